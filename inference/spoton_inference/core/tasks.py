"""Processing tasks: start, inspect, list, watch, and fetch their exports.

Task state lives in PostgreSQL (the record) and Redis (live state and the event log), never
only in this process: a restarted service finds every task, and marks the ones it was
running as failed with a reason.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from spoton_inference.core.catalog import Catalog
from spoton_inference.core.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from spoton_inference.core.events import StatusUpdate, TaskEvent, TaskEventPayload, TaskState
from spoton_inference.pipeline.exports import EXPORT_MEDIA_TYPES
from spoton_inference.pipeline.runner import RunnerPorts, TaskPlan, TaskRunner, batch_lengths
from spoton_inference.pipeline.triton_models import TritonModels
from spoton_inference.settings import Settings
from spoton_inference.storage.postgres import Database, TaskRecord
from spoton_inference.storage.redis_events import RedisEventLog
from spoton_inference.storage.track_writer import TrackPointWriter

log = logging.getLogger(__name__)
MAX_PAGE_SIZE = 200


@dataclasses.dataclass(frozen=True, slots=True)
class ExportInfo:
    name: str
    path: Path
    size_bytes: int
    media_type: str
    url: str


class TaskManager:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        events: RedisEventLog,
        catalog: Catalog,
        models: TritonModels,
        writer: TrackPointWriter,
    ) -> None:
        self._settings = settings
        self._db = db
        self._events = events
        self._catalog = catalog
        self._models = models
        self._writer = writer
        self._running: dict[str, asyncio.Task[None]] = {}

    async def recover(self) -> None:
        """Tasks a previous process left unfinished cannot resume mid-frame: fail them, visibly."""
        reason = "interrupted by a restart of the inference service; start the task again"
        for task_id in await self._db.fail_unfinished_tasks(reason):
            await self._events.append(task_id, StatusUpdate(TaskState.FAILED, 0.0, "interrupted", reason))

    async def start(self, environment_id: str, camera_ids: list[str]) -> TaskRecord:
        if not environment_id:
            raise InvalidArgument("environment_id is required")
        env = self._catalog.get(environment_id)
        if camera_ids:
            unknown = [c for c in camera_ids if env.camera(c) is None]
            if unknown:
                raise InvalidArgument(
                    f"cameras {unknown} are not in environment {environment_id!r} "
                    f"(it has {[c.camera_id for c in env.cameras]})"
                )
            cameras = tuple(c for c in env.cameras if c.camera_id in camera_ids)
        else:
            cameras = env.cameras
        cameras = tuple(c for c in cameras if c.sub_videos)
        if not cameras:
            raise FailedPrecondition(f"environment {environment_id!r} has no sub-videos to process")

        total = sum(batch_lengths(cameras))
        record = await self._db.insert_task(environment_id, [c.camera_id for c in cameras], total)
        plan = TaskPlan(record.task_id, env, cameras, record.created_at)
        await self._emit(record.task_id, StatusUpdate(TaskState.QUEUED, 0.0, "queued"))
        self._running[record.task_id] = asyncio.create_task(self._run(plan), name=f"task-{record.task_id}")
        return record

    async def get(self, task_id: str) -> TaskRecord:
        record = await self._db.get_task(_parse_task_id(task_id))
        if record is None:
            raise NotFound(f"task {task_id!r} not found")
        return record

    async def last_sequence(self, task_id: str) -> int:
        return await self._events.last_sequence(task_id)

    async def list(
        self, *, page_size: int, page_token: str, environment_id: str, state: TaskState | None
    ) -> tuple[list[TaskRecord], str]:
        """A page of tasks, newest first, and the token of the next page ('' at the end)."""
        size = min(max(page_size or 50, 1), MAX_PAGE_SIZE)
        before = _decode_token(page_token) if page_token else None
        rows = await self._db.list_tasks(limit=size + 1, before=before, environment_id=environment_id, state=state)
        more = len(rows) > size
        rows = rows[:size]
        token = _encode_token(rows[-1]) if more else ""
        return rows, token

    async def watch(self, task_id: str, after: int) -> AsyncIterator[TaskEvent]:
        """Events after ``after`` until the task ends (its final status update is the last).

        Also ends when the stored task is final and no event is pending, so a task whose
        runner died before its last event cannot hold a watcher forever.
        """
        record = await self.get(task_id)
        while True:
            events = await self._events.read(record.task_id, after)
            for event in events:
                after = event.sequence
                yield event
                if isinstance(event.payload, StatusUpdate) and event.payload.state.is_final:
                    return
            if not events and (await self.get(task_id)).state.is_final:
                if after >= await self._events.last_sequence(record.task_id):
                    return

    async def exports(self, task_id: str) -> list[ExportInfo]:
        record = await self.get(task_id)
        directory = self._exports_dir(record.task_id)
        if not directory.is_dir():
            return []
        prefix = f"{self._settings.media_url_prefix}/tasks/{record.task_id}/exports"
        return [
            ExportInfo(
                p.name,
                p,
                p.stat().st_size,
                EXPORT_MEDIA_TYPES.get(p.suffix, "application/octet-stream"),
                f"{prefix}/{p.name}",
            )
            for p in sorted(directory.iterdir())
            if p.is_file()
        ]

    async def export_path(self, task_id: str, name: str) -> Path:
        for info in await self.exports(task_id):
            if info.name == name:
                return info.path
        raise NotFound(f"task {task_id} has no export {name!r}")

    async def shutdown(self) -> None:
        for task in self._running.values():
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    def _exports_dir(self, task_id: str) -> Path:
        return self._settings.media_root / "tasks" / task_id / "exports"

    async def _emit(self, task_id: str, payload: TaskEventPayload) -> None:
        await self._events.append(task_id, payload)

    async def _run(self, plan: TaskPlan) -> None:
        task_id = plan.task_id
        total = max(plan.total_frames, 1)

        async def progress(frames: int, step: str) -> None:
            state = TaskState.PREPARING if step.startswith("preparing") else TaskState.PROCESSING
            await self._set_state(task_id, state, frames / total, step, frames)

        runner = TaskRunner(
            plan,
            RunnerPorts(
                models=self._models,
                emit=lambda payload: self._emit(task_id, payload),
                store_points=self._writer.add,
                report_progress=progress,
                media_root=self._settings.media_root,
                media_url_prefix=self._settings.media_url_prefix,
                exports_dir=self._exports_dir(task_id),
                score_threshold=self._settings.detection_threshold,
            ),
        )
        try:
            await runner.run()
            await self._writer.flush()
            await self._set_state(task_id, TaskState.COMPLETED, 1.0, "completed", runner.frames_done)
        except asyncio.CancelledError:
            await self._set_state(
                task_id, TaskState.CANCELLED, runner.frames_done / total, "cancelled", runner.frames_done
            )
            raise
        except Exception as exc:
            log.exception("task %s failed", task_id)
            hint = " (is Triton up?)" if isinstance(exc, Unavailable) else ""
            await self._set_state(
                task_id, TaskState.FAILED, runner.frames_done / total, "failed", runner.frames_done, f"{exc}{hint}"
            )
        finally:
            self._running.pop(task_id, None)

    async def _set_state(
        self, task_id: str, state: TaskState, progress: float, step: str, frames: int, error: str = ""
    ) -> None:
        progress = round(min(max(progress, 0.0), 1.0), 4)
        await self._db.update_task(
            task_id, state=state, progress=progress, step=step, frames_processed=frames, error=error
        )
        await self._events.set_live_state(
            task_id, {"state": state.value, "progress": progress, "step": step, "frames": frames}
        )
        await self._emit(task_id, StatusUpdate(state, progress, step, error))


def _parse_task_id(task_id: str) -> str:
    try:
        return str(uuid.UUID(task_id))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(f"task id {task_id!r} is not a UUID") from None


def _encode_token(row: TaskRecord) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.task_id}".encode()).decode()


def _decode_token(token: str) -> tuple[dt.datetime, str]:
    try:
        created, task_id = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        return dt.datetime.fromisoformat(created), str(uuid.UUID(task_id))
    except ValueError:
        raise InvalidArgument("page_token is not one this server issued") from None
