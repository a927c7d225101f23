"""Task events and live task state on their way to Redis, held back while Redis is unreachable.

Tracking must not stop because Redis did. A write that finds Redis unreachable, and every
write after it, waits in a bounded in-memory outbox; a background task publishes the waiting
events in order once Redis answers again, each taking its sequence number from Redis on
arrival, so the stream stays gap-free and a task's events keep the order they were emitted
in. Live state is a hash, so only its newest fields wait (latest wins).

When more than ``max_events`` events wait, the oldest tracking and progress updates go first:
later ones supersede them, and the track points are in PostgreSQL regardless. Lifecycle
events (media, batches, focus) go only when nothing else is left to drop; a final status,
which ends the task's watches, never does.
A loss is never silent: in the place of a task's first lost event the outbox publishes a
status update whose step starts with ``events lost:`` and counts them, and health reports it.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
import uuid

from spoton_inference.domain.events import StatusUpdate, TaskEventPayload, TaskState, TrackingUpdate
from spoton_inference.storage.redis_client import UNREACHABLE
from spoton_inference.storage.redis_events import RedisEventLog

log = logging.getLogger(__name__)
# Longest one write may take before Redis counts as unreachable (a hung server, a partition).
PUBLISH_TIMEOUT_S = 2.0
RETRY_FIRST_S, RETRY_MAX_S = 0.2, 2.0
LOST_PREFIX = "events lost:"


@dataclasses.dataclass(slots=True)
class _Pending:
    task_id: str
    payload: TaskEventPayload
    emitted_at: float
    # Redis drops a second write of the same token (a retry whose first reply was lost).
    token: str
    # The task's status when this was emitted: what a notice standing in for it reports.
    status: StatusUpdate | None
    # > 0: a notice standing in for this many lost events of the task.
    lost: int = 0

    @property
    def superseded_later(self) -> bool:
        """Tracking and progress updates: later ones carry the news; lose these first."""
        if self.lost:
            return False
        payload = self.payload
        return isinstance(payload, TrackingUpdate) or (isinstance(payload, StatusUpdate) and not _final(payload))

    def to_publish(self, max_events: int) -> TaskEventPayload:
        if not self.lost:
            return self.payload
        status = self.status or StatusUpdate(TaskState.QUEUED, 0.0, "")
        step = (
            f"{LOST_PREFIX} {self.lost} live events were not published while Redis was unreachable "
            f"(more than SPOTON_EVENT_OUTBOX_MAX={max_events} waited); the track points are complete "
            "in PostgreSQL and the exports"
        )
        return StatusUpdate(status.state, status.progress, step)


def _final(payload: TaskEventPayload) -> bool:
    return isinstance(payload, StatusUpdate) and payload.state.is_final


class EventOutbox:
    """Publishes task events and live state to Redis, holding them while it is unreachable."""

    def __init__(self, events: RedisEventLog, max_events: int) -> None:
        self._log = events
        self.max_events = max_events
        self._queue: collections.deque[_Pending] = collections.deque()
        # Events in the queue that are not notices: what the bound counts.
        self._queued_events = 0
        self._states: dict[str, dict[str, str | int | float]] = {}
        # Each unfinished task's newest status, stamped on its events.
        self._status: dict[str, StatusUpdate] = {}
        # A task's notice still in the queue, which later losses of that task add to.
        self._notices: dict[str, _Pending] = {}
        self._drain: asyncio.Task[None] | None = None
        self.lost = 0
        self.last_error = ""
        self.down_since: float | None = None

    @property
    def holding(self) -> bool:
        """Whether writes are being held back (Redis unreachable, or catching up)."""
        return self._drain is not None

    @property
    def depth(self) -> int:
        """Events waiting to be published."""
        return self._queued_events

    def describe(self) -> str:
        return f"{self.depth} events waiting (at most {self.max_events}), {self.lost} lost since start"

    async def append(self, task_id: str, payload: TaskEventPayload) -> None:
        """Publish ``payload`` to the task's stream now, or as soon as Redis can take it."""
        status = self._status.get(task_id)
        if isinstance(payload, StatusUpdate):
            status = payload
            if payload.state.is_final:
                self._status.pop(task_id, None)
            else:
                self._status[task_id] = payload
        entry = _Pending(task_id, payload, time.time(), uuid.uuid4().hex, status)
        if self._drain is None:
            try:
                await self._publish(entry)
                return
            except UNREACHABLE as exc:
                self._went_down(exc)
        self._queue.append(entry)
        self._queued_events += 1
        self._bound()

    async def set_live_state(self, task_id: str, fields: dict[str, str | int | float]) -> None:
        """Write live state fields now, or the newest of them once Redis can take them."""
        if self._drain is None:
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                    await self._log.set_live_state(task_id, fields)
                return
            except UNREACHABLE as exc:
                self._went_down(exc)
        self._states.setdefault(task_id, {}).update(fields)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Give what waits ``timeout_s`` to reach Redis; what cannot is logged as lost."""
        if self._drain is None:
            return
        await asyncio.wait({self._drain}, timeout=timeout_s)
        if not self._drain.done():
            self._drain.cancel()
            log.error(
                "%d task events and live state of %d tasks not published: Redis unreachable (%s)",
                self.depth,
                len(self._states),
                self.last_error,
            )

    async def _publish(self, entry: _Pending) -> None:
        async with asyncio.timeout(PUBLISH_TIMEOUT_S):
            await self._log.append(
                entry.task_id, entry.to_publish(self.max_events), emitted_at=entry.emitted_at, token=entry.token
            )

    def _went_down(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self._drain is None:
            self.down_since = time.time()
            log.warning("Redis unreachable (%s): holding task events, at most %d", self.last_error, self.max_events)
            self._drain = asyncio.create_task(self._drain_when_back(), name="event-outbox")

    def _bound(self) -> None:
        while self._queued_events > self.max_events:
            at = next((i for i, e in enumerate(self._queue) if e.superseded_later), None)
            if at is None:  # only lifecycle events left: lose the oldest all the same, but
                # never a final status, which ends the task's watches (at most one per task)
                at = next((i for i, e in enumerate(self._queue) if not e.lost and not _final(e.payload)), None)
            if at is None:
                return
            victim = self._queue[at]
            self._queued_events -= 1
            self.lost += 1
            notice = self._notices.get(victim.task_id)
            if notice is None:  # the task's first loss: a notice takes the event's place
                victim.lost = 1
                self._notices[victim.task_id] = victim
            else:
                notice.lost += 1
                del self._queue[at]

    async def _drain_when_back(self) -> None:
        delay = RETRY_FIRST_S
        await asyncio.sleep(delay)
        while self._queue or self._states:
            try:
                await self._publish_waiting()
            except UNREACHABLE as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        # Nothing waits and no await since the check: new writes go straight to Redis again.
        log.info("Redis reachable again after %.1fs: waiting task events published", time.time() - self.down_since)
        self._drain = None
        self.down_since = None

    async def _publish_waiting(self) -> None:
        # Live state first: it names the task's replica, which watchers elsewhere ask after
        # to know whether the events still waiting here will come.
        for task_id in list(self._states):
            fields = self._states.pop(task_id)
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                    await self._log.set_live_state(task_id, fields)
            except BaseException:
                self._states[task_id] = {**fields, **self._states.get(task_id, {})}
                raise
        while self._queue:
            # Out of the queue while in flight, so the bound cannot lose it under our feet.
            entry = self._queue.popleft()
            if entry.lost:
                self._notices.pop(entry.task_id, None)
            else:
                self._queued_events -= 1
            try:
                await self._publish(entry)
            except BaseException:
                self._queue.appendleft(entry)
                if entry.lost:
                    self._notices.setdefault(entry.task_id, entry)
                else:
                    self._queued_events += 1
                raise
