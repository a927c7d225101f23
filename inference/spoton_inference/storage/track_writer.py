"""Batched track-point writes, off the frame path.

The pipeline hands rows to :meth:`TrackPointWriter.add` and moves on; a background task
COPYs them in batches. When PostgreSQL fails, the batch is kept and retried with back-off.
The buffer is bounded: past ``max_buffered`` rows, the oldest are dropped and counted as
lost, so a dead database can never exhaust memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class WriterCounters:
    written: int = 0
    retries: int = 0
    lost: int = 0

    @property
    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class TrackPointWriter:
    def __init__(
        self,
        copy_rows: Callable[[list[tuple]], Awaitable[None]],
        *,
        batch_size: int = 5000,
        max_buffered: int = 2_000_000,
        flush_interval_s: float = 0.25,
    ) -> None:
        self._copy_rows = copy_rows
        self._batch_size = batch_size
        self._max_buffered = max_buffered
        self._flush_interval_s = flush_interval_s
        self._buffer: collections.deque[tuple] = collections.deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.counters = WriterCounters()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="track-point-writer")

    def add(self, rows: list[tuple]) -> None:
        """Queue rows; never blocks."""
        if not rows:
            return
        self._buffer.extend(rows)
        overflow = len(self._buffer) - self._max_buffered
        for _ in range(max(0, overflow)):
            self._buffer.popleft()
        if overflow > 0:
            self.counters.lost += overflow
            log.error("track-point buffer full: dropped %d rows", overflow)
        self._idle.clear()
        if len(self._buffer) >= self._batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Wait until every queued row is written."""
        self._wake.set()
        await self._idle.wait()

    async def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (for at most ``timeout_s``), then stop; the rest counts as lost."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self.counters.lost += len(self._buffer)
            log.error("shutting down with %d track points unwritten", len(self._buffer))
            self._buffer.clear()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            if not self._buffer:
                self._idle.set()
                if self._closing:
                    return
            # asyncio.timeout, unlike wait_for on 3.11, never turns a cancel into a timeout.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_interval_s):
                    await self._wake.wait()
            self._wake.clear()
            while self._buffer:
                batch = [self._buffer.popleft() for _ in range(min(self._batch_size, len(self._buffer)))]
                try:
                    await self._copy_rows(batch)
                except Exception as exc:  # any database failure: keep the rows, retry later
                    self._buffer.extendleft(reversed(batch))
                    self.counters.retries += 1
                    log.warning("track-point write failed (%s); retrying in %.1fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.1
                self.counters.written += len(batch)
