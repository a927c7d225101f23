"""One blocking Redis read per watched task, shared by all of its watchers.

A watcher (WatchTask, and through it every SSE client) used to hold a pooled connection in a
blocking XREAD of its own, so a hundred watchers used up the pool and starved everything
else (event publishing, the replica lease). Here each task with watchers has one reader that
blocks on the task's stream and wakes the watchers when an event arrives; each watcher then
fetches its own events with a short non-blocking read from the sequence it has reached, so
none can miss one. A watcher holds no queue: only the newest sequence seen is shared.

The blocking reads run on a pool of their own (SPOTON_REDIS_WATCH_CONNECTIONS), one
connection per watched task at most: a blocked XREAD never holds a connection of the command
pool, and past that many watched tasks a reader waits for a free connection (its watchers
still look every BLOCK_MS) rather than opening more.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from spoton_inference.storage.redis_client import UNREACHABLE
from spoton_inference.storage.redis_events import RedisEventLog

log = logging.getLogger(__name__)
# How long the shared read blocks in Redis; a watcher with nothing new is woken this often
# to look at the task's record.
BLOCK_MS = 1000
# After a failed shared read (Redis unreachable), before the next.
RETRY_S = 0.5


@dataclasses.dataclass(eq=False, slots=True)
class _Stream:
    newest: int
    watchers: int = 0
    # Replaced on every change; watchers wait on the one they saw.
    changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None


class SharedWaits:
    """Waits for new events on task streams, one Redis read per task however many watch it."""

    def __init__(self, events: RedisEventLog, timeout_s: float, connections: int) -> None:
        self._events = events.on_own_pool(connections)
        # Bound on one shared read beyond its own block time: a frozen Redis must not hold it.
        self._timeout_s = timeout_s
        self._streams: dict[str, _Stream] = {}

    @property
    def readers(self) -> int:
        """Shared reads running now: one per task being watched."""
        return len(self._streams)

    async def wait_past(self, task_id: str, after: int) -> None:
        """Return once the task's stream may hold an event past ``after``, or after about
        BLOCK_MS with nothing new (the caller then reads, and looks at the record)."""
        stream = self._streams.get(task_id)
        if stream is None:
            stream = self._streams[task_id] = _Stream(newest=after)
            stream.reader = asyncio.create_task(self._read(task_id, stream), name=f"watch-{task_id}")
        if stream.newest > after:
            return
        stream.watchers += 1
        changed = stream.changed
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(BLOCK_MS / 1000 + self._timeout_s):
                    await changed.wait()
        finally:
            stream.watchers -= 1
            if stream.watchers == 0 and stream.reader is not None:
                # The last watcher left: stop reading (a new watcher starts a new reader).
                self._streams.pop(task_id, None)
                stream.reader.cancel()

    async def close(self) -> None:
        readers = [s.reader for s in self._streams.values() if s.reader is not None]
        self._streams.clear()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await self._events.close()

    async def _read(self, task_id: str, stream: _Stream) -> None:
        while True:
            try:
                async with asyncio.timeout(BLOCK_MS / 1000 + self._timeout_s):
                    newest = await self._events.wait_past(task_id, stream.newest, BLOCK_MS)
            except UNREACHABLE as exc:
                log.debug("shared read of task %s failed (%s); retrying", task_id, exc)
                await asyncio.sleep(RETRY_S)
                continue
            if newest > stream.newest:
                stream.newest = newest
                stream.changed.set()
                stream.changed = asyncio.Event()
