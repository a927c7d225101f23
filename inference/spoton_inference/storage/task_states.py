"""Task-state writes to PostgreSQL that an outage cannot fail.

A task reports its state on every progress step; PostgreSQL being away must not stop it.
:meth:`TaskStateWriter.write` writes at once while PostgreSQL answers, so a read right after
sees the change. When a write fails, the task's state is kept (a newer one replaces it:
latest wins) and a background task retries until it is written, final states included,
or until :meth:`~TaskStateWriter.close`. While a task has a state waiting, its newer states
only replace it, so writes of one task never land out of order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from spoton_inference.services.task_ports import TaskStateUpdate

__all__ = ["TaskStateUpdate", "TaskStateWriter", "UpdateTask"]

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0


UpdateTask = Callable[[TaskStateUpdate], Awaitable[None]]


class TaskStateWriter:
    def __init__(self, update: UpdateTask, *, timeout_s: float = 10.0) -> None:
        self._update = update
        self._timeout_s = timeout_s
        # The newest state of each task not yet written, and the tasks the background retries.
        self._latest: dict[str, TaskStateUpdate] = {}
        self._retrying: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def write(self, update: TaskStateUpdate) -> None:
        """Write now, or, when PostgreSQL fails, keep it for the background to retry; never raises."""
        self._latest[update.task_id] = update
        if update.task_id in self._retrying:
            return
        # Callers serialise the writes of one task, so no two of this task run at once.
        if not await self._attempt(update.task_id):
            self._retrying.add(update.task_id)
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._retry(), name="task-state-retry")

    async def close(self, timeout_s: float = 2.0) -> None:
        """Give waiting writes ``timeout_s`` more, then report what stays unwritten."""
        if self._task is not None and not self._task.done():
            done, _ = await asyncio.wait({self._task}, timeout=timeout_s)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        for task_id in self._retrying:
            update = self._latest[task_id]
            log.error(
                "stopping before task %s's state %s (%s) reached PostgreSQL; the next start marks it interrupted",
                task_id,
                update.state.value,
                update.step,
            )

    async def _retry(self) -> None:
        backoff = 0.1
        while self._retrying:
            await asyncio.sleep(backoff)
            for task_id in list(self._retrying):
                if await self._attempt(task_id):
                    self._retrying.discard(task_id)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        log.info("task states are written to PostgreSQL again")

    async def _attempt(self, task_id: str) -> bool:
        """Write the task's newest state; True once nothing newer is left to write."""
        while (update := self._latest.get(task_id)) is not None:
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._update(update)
            except Exception as exc:  # any database failure: keep it for the retry
                if task_id not in self._retrying:
                    log.warning(
                        "cannot write task %s's state to PostgreSQL (%s: %s); tracking goes on, retrying",
                        task_id,
                        type(exc).__name__,
                        exc,
                    )
                return False
            if self._latest.get(task_id) is update:
                del self._latest[task_id]
        return True
