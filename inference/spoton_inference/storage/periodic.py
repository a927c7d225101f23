"""A background task that calls ``flush()`` at an interval, for writers kept off the frame path."""

from __future__ import annotations

import asyncio
import contextlib


class PeriodicFlush:
    """Subclasses queue work without awaiting and write it in ``_flush()``; this runs it every
    ``interval_s`` after :meth:`start`, and once more (for at most 5 s) on :meth:`close`."""

    def __init__(self, interval_s: float, name: str) -> None:
        self._interval_s = interval_s
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    async def flush(self) -> None:
        """Write everything queued now (the end of a task, and tests).

        One flush at a time: when it returns, everything queued before the call was written
        (or, on failure, is queued again), even if the background flush was already running.
        """
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # Best effort: the store may be away at shutdown, and what is still queued is dropped.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), timeout=5.0)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.flush()
