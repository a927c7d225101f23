"""Processing tasks: start, inspect, list, control, watch, and fetch their exports.

Task state lives in PostgreSQL (the record) and Redis (live state and the event log), never
only in this process: any replica serves any task's record and events, and a restarted
service finds every task, and marks the ones it was running as failed with a reason.

Redis may go away mid-task: events and live state then wait in the outbox (see
``storage/event_outbox.py``) and tracking goes on; open watches wait for Redis and go on
where they were, new ones are told UNAVAILABLE.

:class:`TaskManager` is the one face the gRPC edge and the jobs see; each concern is a
service of its own: reading (``task_queries``), starting and controlling (``task_control``),
watching (``task_watch``), recovery after a restart (``task_recovery``) and the export files
(``task_exports``). The composition root builds them over their ports (``task_setup.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from spoton_inference.domain.errors import NotFound
from spoton_inference.domain.events import TaskEvent, TaskState
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.services.task_control import (
    TaskAction,
    TaskControl,
    TaskRunning,
    raise_if_cancel_was_swallowed,
)
from spoton_inference.services.task_exports import ExportFiles, ExportInfo
from spoton_inference.services.task_ports import ControlRequest, EventWaits, ModelsReadiness
from spoton_inference.services.task_queries import TaskQueries
from spoton_inference.services.task_recovery import TaskRecovery
from spoton_inference.services.task_watch import TaskWatch

__all__ = ["ExportInfo", "TaskAction", "TaskManager", "TaskRunning", "raise_if_cancel_was_swallowed"]


class TaskManager:
    """The task services behind one face, with the methods the edge and the jobs call."""

    def __init__(
        self,
        queries: TaskQueries,
        control: TaskControl,
        watching: TaskWatch,
        recovery: TaskRecovery,
        files: ExportFiles,
        models: ModelsReadiness,
    ) -> None:
        self._queries = queries
        self._control = control
        self._watching = watching
        self._recovery = recovery
        self._files = files
        self._models = models

    @property
    def open_watches(self) -> int:
        """WatchTask streams being served right now; health reports it, tests check it drops to 0."""
        return self._watching.open_watches

    @property
    def shared_waits(self) -> EventWaits:
        return self._watching.shared_waits

    async def recover(self) -> None:
        await self._recovery.recover()

    async def fail_over(self) -> list[str]:
        return await self._recovery.fail_over()

    async def fail_over_forever(self) -> None:
        await self._recovery.fail_over_forever()

    async def start(
        self,
        environment_id: str,
        camera_ids: list[str],
        *,
        detection_threshold: float | None = None,
        idempotency_key: str = "",
        allow_concurrent: bool = False,
    ) -> TaskRecord:
        """See :meth:`TaskControl.start`."""
        return await self._control.start(
            environment_id,
            camera_ids,
            detection_threshold=detection_threshold,
            idempotency_key=idempotency_key,
            allow_concurrent=allow_concurrent,
        )

    async def get(self, task_id: str) -> TaskRecord:
        return await self._queries.get(task_id)

    async def last_sequence(self, task_id: str) -> int:
        return await self._queries.last_sequence(task_id)

    async def focus(self, task_id: str) -> int:
        return await self._queries.focus(task_id)

    async def models_ready(self) -> bool:
        """Whether Triton answers with its models loaded; a frozen Triton is not (bounded wait)."""
        return all((await self._models.ready()).values())

    async def unfinished(self, environment_id: str) -> list[TaskRecord]:
        return await self._queries.unfinished(environment_id)

    async def control(self, task_id: str, action: TaskAction, focus_global_id: int = 0) -> TaskRecord:
        return await self._control.control(task_id, action, focus_global_id)

    async def control_here(self, request: ControlRequest) -> None:
        """A control another replica forwarded to this one (see TaskControl.control_here)."""
        await self._control.control_here(request)

    async def list(
        self, *, page_size: int, page_token: str, environment_id: str, state: TaskState | None
    ) -> tuple[list[TaskRecord], str]:
        return await self._queries.list(
            page_size=page_size, page_token=page_token, environment_id=environment_id, state=state
        )

    async def check_resume(self, task_id: str, after: int) -> bool:
        return await self._watching.check_resume(task_id, after)

    def watch(self, task_id: str, after: int) -> AsyncIterator[TaskEvent]:
        return self._watching.watch(task_id, after)

    async def exports(self, task_id: str) -> list[ExportInfo]:
        record = await self._queries.get(task_id)
        return self._files.listing(record.task_id)

    async def export_path(self, task_id: str, name: str) -> Path:
        for info in await self.exports(task_id):
            if info.name == name:
                return info.path
        raise NotFound(f"task {task_id} has no export {name!r}")

    async def shutdown(self) -> None:
        await self._control.cancel_all()
        await self._watching.close()
        await self._control.close()
