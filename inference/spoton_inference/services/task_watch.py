"""Watching a task: its events from Redis, from a sequence number on, until it ends.

Any replica serves any task's events. While Redis is unreachable an open watch waits, then
goes on where it was (events wait in the outbox and take their sequence numbers on arrival);
a new one is told UNAVAILABLE. Watchers of one task share one blocking Redis read
(``EventWaits``) and one PostgreSQL lookup of whether the task has ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from spoton_inference.domain.errors import NotFound, OutOfRange, Unavailable
from spoton_inference.domain.events import StatusUpdate, TaskEvent
from spoton_inference.services.request_args import parse_uuid
from spoton_inference.services.shared_lookups import SharedLookups
from spoton_inference.services.task_control import raise_if_cancel_was_swallowed
from spoton_inference.services.task_ports import ErrorTypes, EventLog, EventWaits, Lease, TaskRecords
from spoton_inference.services.task_queries import TaskQueries

log = logging.getLogger(__name__)
# How often an open watch tries Redis again while it is unreachable.
WATCH_RETRY_S = 0.5
# Rounds of shared waits (about a second each) that a finished task's stream must stay over,
# with no final event, before a watcher ends without one.
WATCH_OVER_ROUNDS = 3
# How long the answer to "has the stored task ended?" serves every watcher of the task; the
# final event, not this, ends a watch that the runner finishes.
WATCH_FINAL_FRESH_S = 0.5


class TaskWatch:
    def __init__(
        self,
        records: TaskRecords,
        queries: TaskQueries,
        events: EventLog,
        waits: EventWaits,
        lease: Lease,
        *,
        redis_timeout_s: float,
        unreachable: ErrorTypes,
    ) -> None:
        self._records = records
        self._queries = queries
        self._events = events
        self._lease = lease
        # SPOTON_REDIS_TIMEOUT_S: how long one Redis read may take before it counts as unreachable.
        self._redis_timeout_s = redis_timeout_s
        self._unreachable = unreachable
        # WatchTask streams being served right now; health reports it, tests check it drops to 0.
        self.open_watches = 0
        # Watchers of one task share one blocking Redis read, on connections of its own, so they
        # do not use up the pool.
        self.shared_waits = waits
        # ... and one PostgreSQL lookup of whether the task has ended, not one each per event.
        self._stored_finals = SharedLookups(self._read_stored_final, WATCH_FINAL_FRESH_S)

    async def check_resume(self, task_id: str, after: int) -> bool:
        """Whether a watch from ``after`` has anything to deliver, now or later.

        Raises OutOfRange (the event log's EventsExpired among them) when events after ``after``
        have left the retention window, or when ``after`` is past the newest event, so a watcher
        learns it must start over before it is told the stream is open. False when the task is over and nothing
        follows ``after``.
        """
        record = await self._queries.get(task_id)
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                last = await self._events.last_sequence(record.task_id)
                # Not read past the newest event (refused below): Redis refuses stream IDs past 2**64 - 1.
                pending = await self._events.read(record.task_id, after, block_ms=0, count=1) if after <= last else []
        except self._unreachable as exc:
            raise Unavailable(
                f"the events of task {record.task_id} are in Redis, which cannot be reached ({exc}); the task "
                f"goes on and its events wait for Redis: retry WatchTask with after_sequence={after} shortly"
            ) from exc
        if after > last:
            raise OutOfRange(
                f"after_sequence {after} is past the newest event ({last}) of task {record.task_id}; "
                "resume from a sequence number you received"
            )
        if pending:
            return True
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                return not record.state.is_final or not await self._stream_over(record.task_id)
        except self._unreachable as exc:
            raise Unavailable(f"Redis cannot be reached ({exc}); retry WatchTask shortly") from exc

    async def watch(self, task_id: str, after: int) -> AsyncIterator[TaskEvent]:
        """Events after ``after`` until the task ends (its final status update is the last).

        Also ends when the stored task is final, no event is pending and the replica that ran
        it is gone, so a task whose runner died before its last event cannot hold a watcher
        forever (while that replica lives, its final event may still wait in its outbox).
        While Redis is unreachable it waits, then goes on after the last event it gave: nothing
        is lost, since events wait in the outbox and take their sequence numbers on arrival.
        """
        record = await self._queries.get(task_id)
        redis_timeout_s = self._redis_timeout_s
        over_rounds = 0
        self.open_watches += 1
        try:
            while True:
                raise_if_cancel_was_swallowed()
                try:
                    # Never blocking in Redis: the wait below is shared with the task's other watchers.
                    async with asyncio.timeout(redis_timeout_s):
                        events = await self._events.read(record.task_id, after, block_ms=0)
                except self._unreachable:
                    await asyncio.sleep(WATCH_RETRY_S)
                    continue
                raise_if_cancel_was_swallowed()
                for event in events:
                    after = event.sequence
                    yield event
                    if isinstance(event.payload, StatusUpdate) and event.payload.state.is_final:
                        return
                if events:
                    continue
                if await self._stored_final(task_id):
                    try:
                        async with asyncio.timeout(redis_timeout_s):
                            caught_up = after >= await self._events.last_sequence(record.task_id)
                            over = caught_up and await self._stream_over(record.task_id)
                    except self._unreachable:
                        await asyncio.sleep(WATCH_RETRY_S)
                        continue
                    # The runner stores the final state just before it publishes the final
                    # event, and its live state may be gone by then: end only once the stream
                    # has stayed over for a few shared waits, so that event is never cut off.
                    over_rounds = over_rounds + 1 if over else 0
                    if over_rounds >= WATCH_OVER_ROUNDS:
                        return
                await self.shared_waits.wait_past(record.task_id, after)
        finally:
            self.open_watches -= 1

    async def close(self) -> None:
        await self.shared_waits.close()

    async def _stream_over(self, task_id: str) -> bool:
        """Whether nothing more will follow on the stream of a task whose record is final: its
        newest event is the final status, or no live replica is left to publish one."""
        newest = await self._events.newest(task_id)
        if newest is not None and isinstance(newest.payload, StatusUpdate) and newest.payload.state.is_final:
            return True
        owner = await self._queries.owner(task_id)
        return not owner or not await self._lease.alive(owner)

    async def _stored_final(self, task_id: str) -> bool:
        """Whether the stored task has ended; False while PostgreSQL is away (watchers go on).

        Shared by the task's watchers (see ``WATCH_FINAL_FRESH_S``); each was scoped on starting.
        """
        return await self._stored_finals.get(task_id)

    async def _read_stored_final(self, task_id: str) -> bool:
        try:
            record = await self._records.get_task(parse_uuid(task_id, "task id"))
        except Exception as exc:  # any database failure
            log.debug("cannot read task %s from PostgreSQL (%s); watching on", task_id, exc)
            return False
        if record is None:
            raise NotFound(f"task {task_id!r} not found")  # deleted (with its job) while watched
        return record.state.is_final
