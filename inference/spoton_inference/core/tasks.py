"""Processing tasks: start, inspect, list, control, watch, and fetch their exports.

Task state lives in PostgreSQL (the record) and Redis (live state and the event log), never
only in this process: a restarted service finds every task, and marks the ones it was
running as failed with a reason.

Controls: pause holds the runner between frames (it waits before tracking the next one),
resume lets it go on, cancel cancels its asyncio task (the runner stops at its next await and
the task ends CANCELLED), and focus records a global person id in the live state and
announces it as a ``focus_update`` event.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import enum
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from spoton_inference.core.catalog import Catalog
from spoton_inference.core.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from spoton_inference.core.events import FocusUpdate, StatusUpdate, TaskEvent, TaskEventPayload, TaskState
from spoton_inference.pipeline.associate import IdentityState
from spoton_inference.pipeline.exports import EXPORT_MEDIA_TYPES
from spoton_inference.pipeline.multicam import tracking_configs
from spoton_inference.pipeline.runner import RunnerPorts, TaskPlan, TaskRunner, batch_lengths
from spoton_inference.pipeline.triton_models import TritonModels
from spoton_inference.settings import Settings
from spoton_inference.storage.identity_sync import IdentitySync, snapshot
from spoton_inference.storage.postgres import Database, TaskRecord
from spoton_inference.storage.redis_events import EventsExpired, RedisEventLog
from spoton_inference.storage.task_states import TaskStateUpdate, TaskStateWriter
from spoton_inference.storage.track_writer import TrackPointWriter

log = logging.getLogger(__name__)
MAX_PAGE_SIZE = 200
# How long ControlTask(cancel) waits for the runner to stop before answering anyway.
CANCEL_WAIT_S = 10.0
UNFINISHED = tuple(s for s in TaskState if not s.is_final)


class TaskAction(enum.StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    FOCUS = "focus"


def raise_if_cancel_was_swallowed() -> None:
    """Re-raise a cancellation of the current task that a library swallowed.

    redis-py writes every command under ``asyncio.wait_for``, which on Python 3.11 drops a
    cancellation that lands while the write completes, so a cancelled watcher or runner would
    carry on. ``Task.cancelling()`` still counts the request: loops call this between steps.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _running_event() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


@dataclasses.dataclass(eq=False, slots=True)
class _Live:
    """A task this process runs: its asyncio task and what its controls need."""

    task: asyncio.Task[None] | None = None
    # Set while the runner may go on; cleared while paused (the runner waits on it).
    running: asyncio.Event = dataclasses.field(default_factory=_running_event)
    # Serialises state writes, so a pause and a progress report cannot land out of order.
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    # The state and step the runner last reported, restored on resume.
    state: TaskState = TaskState.QUEUED
    step: str = "queued"
    progress: float = 0.0
    frames: int = 0
    # Set (without awaiting) once the runner is over and its final state is being written.
    ending: bool = False
    cancelling: bool = False

    @property
    def paused(self) -> bool:
        return not self.running.is_set()


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
        identities: IdentitySync | None = None,
    ) -> None:
        self._settings = settings
        self._identities = identities
        self._db = db
        self._events = events
        self._catalog = catalog
        self._models = models
        self._writer = writer
        self._live: dict[str, _Live] = {}
        # A task's state writes outlive a PostgreSQL outage (retried, latest wins) instead of failing it.
        self._states = TaskStateWriter(
            lambda u: db.update_task(
                u.task_id,
                state=u.state,
                progress=u.progress,
                step=u.step,
                frames_processed=u.frames_processed,
                error=u.error,
            )
        )
        # WatchTask streams being served right now; health reports it, tests check it drops to 0.
        self.open_watches = 0

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
        # Registered before the first await, so a control call right after StartTask finds it.
        live = self._live[record.task_id] = _Live()
        await self._emit(record.task_id, StatusUpdate(TaskState.QUEUED, 0.0, "queued"))
        live.task = asyncio.create_task(self._run(plan, live), name=f"task-{record.task_id}")
        return record

    async def get(self, task_id: str) -> TaskRecord:
        record = await self._db.get_task(_parse_task_id(task_id))
        if record is None:
            raise NotFound(f"task {task_id!r} not found")
        return record

    async def last_sequence(self, task_id: str) -> int:
        return await self._events.last_sequence(task_id)

    async def focus(self, task_id: str) -> int:
        """The global person id the task is focused on; 0 for none."""
        return int((await self._events.get_live_state(task_id)).get("focus_global_id", 0))

    async def unfinished(self, environment_id: str) -> list[TaskRecord]:
        """Tasks over ``environment_id`` that have not ended, from the record (any replica)."""
        found: list[TaskRecord] = []
        for state in UNFINISHED:
            found += await self._db.list_tasks(limit=MAX_PAGE_SIZE, environment_id=environment_id, state=state)
        return found

    async def control(self, task_id: str, action: TaskAction, focus_global_id: int = 0) -> TaskRecord:
        """Apply ``action``; FailedPrecondition when the task's state does not allow it."""
        record = await self.get(task_id)
        task_id = record.task_id
        if record.state.is_final:
            raise FailedPrecondition(
                f"task {task_id} is {record.state.value}; only an unfinished task can be controlled"
            )
        if action is TaskAction.FOCUS:
            if focus_global_id < 0:
                raise InvalidArgument(
                    f"focus_global_id must be a global person id, or 0 to clear the focus; got {focus_global_id}"
                )
            await self._events.set_live_state(task_id, {"focus_global_id": focus_global_id})
            await self._emit(task_id, FocusUpdate(global_id=focus_global_id))
            return await self.get(task_id)
        live = self._live.get(task_id)
        if live is None or live.task is None:
            raise FailedPrecondition(
                f"task {task_id} is {record.state.value} but not run by this service instance; "
                "send the control to the instance that started it"
            )
        if action is TaskAction.CANCEL:
            await self._cancel(task_id, live)
        elif action in (TaskAction.PAUSE, TaskAction.RESUME):
            await self._pause_or_resume(task_id, live, pause=action is TaskAction.PAUSE)
        else:
            raise InvalidArgument(f"unknown action {action!r}: use pause, resume, cancel or focus")
        return await self.get(task_id)

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

    async def check_resume(self, task_id: str, after: int) -> bool:
        """Whether a watch from ``after`` has anything to deliver, now or later.

        Raises EventsExpired (OUT_OF_RANGE) when events after ``after`` have left the retention
        window, or when ``after`` is past the newest event, so a watcher learns it must start
        over before it is told the stream is open. False when the task is over and nothing
        follows ``after``.
        """
        record = await self.get(task_id)
        last = await self._events.last_sequence(record.task_id)
        if after > last:
            raise EventsExpired(
                f"after_sequence {after} is past the newest event ({last}) of task {record.task_id}; "
                "resume from a sequence number you received"
            )
        if await self._events.read(record.task_id, after, block_ms=0, count=1):
            return True
        return not record.state.is_final

    async def watch(self, task_id: str, after: int) -> AsyncIterator[TaskEvent]:
        """Events after ``after`` until the task ends (its final status update is the last).

        Also ends when the stored task is final and no event is pending, so a task whose
        runner died before its last event cannot hold a watcher forever.
        """
        record = await self.get(task_id)
        self.open_watches += 1
        try:
            while True:
                raise_if_cancel_was_swallowed()
                events = await self._events.read(record.task_id, after)
                raise_if_cancel_was_swallowed()
                for event in events:
                    after = event.sequence
                    yield event
                    if isinstance(event.payload, StatusUpdate) and event.payload.state.is_final:
                        return
                if not events and await self._stored_final(task_id):
                    if after >= await self._events.last_sequence(record.task_id):
                        return
        finally:
            self.open_watches -= 1

    async def _stored_final(self, task_id: str) -> bool:
        """Whether the stored task has ended; False while PostgreSQL is away (watchers go on)."""
        try:
            return (await self.get(task_id)).state.is_final
        except NotFound:
            raise
        except Exception as exc:  # any database failure
            log.debug("cannot read task %s from PostgreSQL (%s); watching on", task_id, exc)
            return False

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
        tasks = [live.task for live in self._live.values() if live.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._states.close()

    def _exports_dir(self, task_id: str) -> Path:
        return self._settings.media_root / "tasks" / task_id / "exports"

    async def _emit(self, task_id: str, payload: TaskEventPayload) -> None:
        await self._events.append(task_id, payload)

    async def _cancel(self, task_id: str, live: _Live) -> None:
        assert live.task is not None
        async with live.lock:
            if live.ending:
                raise FailedPrecondition(f"task {task_id} is already ending; it can no longer be cancelled")
            if not live.cancelling:
                live.cancelling = True
                live.task.cancel()
        # The runner stops at its next await; its final state is written before the task ends.
        await asyncio.wait({live.task}, timeout=CANCEL_WAIT_S)

    async def _pause_or_resume(self, task_id: str, live: _Live, *, pause: bool) -> None:
        async with live.lock:
            if live.ending or live.cancelling:
                raise FailedPrecondition(f"task {task_id} is ending; it can no longer be paused or resumed")
            if pause and live.paused:
                raise FailedPrecondition(f"task {task_id} is already paused; resume it to go on")
            if not pause and not live.paused:
                raise FailedPrecondition(
                    f"task {task_id} is {live.state.value}, not paused; only a paused task can be resumed"
                )
            if pause:
                live.running.clear()
                await self._set_state(task_id, TaskState.PAUSED, live.progress, "paused", live.frames, live=live)
            else:
                live.running.set()
                await self._set_state(task_id, live.state, live.progress, live.step, live.frames, live=live)

    def _identity_mirror(self, plan: TaskPlan) -> Callable[[list[IdentityState]], None] | None:
        """Hands the task's identities to the gallery (scope: the task) and embedding history."""
        if self._identities is None:
            return None
        sync, start = self._identities, plan.created_at.timestamp()
        task_uuid, env_id, fps = uuid.UUID(plan.task_id), plan.environment.environment_id, plan.cameras[0].fps

        def offer(states: list[IdentityState]) -> None:
            entries, rows = snapshot(states, task_id=task_uuid, environment_id=env_id, start_time=start, fps=fps)
            sync.offer(plan.task_id, entries, rows)

        return offer

    async def _run(self, plan: TaskPlan, live: _Live) -> None:
        task_id = plan.task_id
        total = max(plan.total_frames, 1)

        async def progress(frames: int, step: str) -> None:
            state = TaskState.PREPARING if step.startswith("preparing") else TaskState.PROCESSING
            async with live.lock:
                live.state, live.step = state, step
                if live.paused:  # a frame that was in flight when the pause came: stay PAUSED
                    state, step = TaskState.PAUSED, "paused"
                await self._set_state(task_id, state, frames / total, step, frames, live=live)

        async def wait_if_paused() -> None:
            raise_if_cancel_was_swallowed()  # checked once per frame
            await live.running.wait()

        async def finish(state: TaskState, step: str, frames: int, error: str = "") -> None:
            done = 1.0 if state is TaskState.COMPLETED else frames / total
            async with live.lock:
                await self._set_state(task_id, state, done, step, frames, error, live=live)

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
                wait_if_paused=wait_if_paused,
                identities_seen=self._identity_mirror(plan),
                tracking=functools.partial(tracking_configs, self._settings),
            ),
        )
        try:
            try:
                await runner.run()
                await self._writer.flush()
            except asyncio.CancelledError:
                live.ending = True
                await finish(TaskState.CANCELLED, "cancelled", runner.frames_done)
                raise
            except Exception as exc:
                live.ending = True
                log.exception("task %s failed", task_id)
                hint = " (is Triton up?)" if isinstance(exc, Unavailable) else ""
                await finish(TaskState.FAILED, "failed", runner.frames_done, f"{exc}{hint}")
            else:
                live.ending = True
                await finish(TaskState.COMPLETED, "completed", runner.frames_done)
        finally:
            self._live.pop(task_id, None)

    async def _set_state(
        self,
        task_id: str,
        state: TaskState,
        progress: float,
        step: str,
        frames: int,
        error: str = "",
        *,
        live: _Live | None = None,
    ) -> None:
        progress = round(min(max(progress, 0.0), 1.0), 4)
        if live is not None:
            live.progress, live.frames = progress, frames
        await self._states.write(TaskStateUpdate(task_id, state, progress, step, frames, error))
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
