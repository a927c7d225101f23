"""Starting tasks and controlling the ones this replica runs: pause, resume, cancel, focus.

A start records the task in PostgreSQL and runs it here, in an asyncio task of its own;
state writes outlive a PostgreSQL outage (``TaskStates``) and events wait in the outbox while
Redis is away, so tracking goes on. Controls: pause holds the runner between frames (it waits
before tracking the next one), resume lets it go on, cancel cancels its asyncio task (the
runner stops at its next await and the task ends CANCELLED), and focus records a global
person id in the live state and announces it as a ``focus_update`` event.

Self-fencing: a replica whose lease went unrenewed for longer than its time to live cannot
know whether another replica has failed its tasks over, so it stops them itself, each ending
FAILED with a reason that names it (:meth:`TaskControl.stop_for_lost_lease`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections.abc import Awaitable, Callable

from spoton_inference.domain.environment import Camera, Environment
from spoton_inference.domain.errors import FailedPrecondition, InvalidArgument, Unavailable
from spoton_inference.domain.events import FocusUpdate, StatusUpdate, TaskEventPayload, TaskState
from spoton_inference.domain.principal import current_principal
from spoton_inference.domain.rate_limit import RateLimiter
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.domain.zones import Zone
from spoton_inference.services.audit import Audit, AuditAction, audited, run_audited
from spoton_inference.services.idempotency import KeyTaken, Operation, claim_for, replayed
from spoton_inference.services.request_args import known_cameras
from spoton_inference.services.task_exports import ExportFiles
from spoton_inference.services.task_ports import (
    ControlRelay,
    ControlRequest,
    EnvironmentBusy,
    Environments,
    EventPublisher,
    KeyLookup,
    Lease,
    TaskRecords,
    TaskRun,
    TaskRunners,
    TaskStates,
    TaskStateUpdate,
)
from spoton_inference.services.task_queries import TaskQueries

log = logging.getLogger(__name__)
# How long ControlTask(cancel) waits for the runner to stop before answering anyway.
CANCEL_WAIT_S = 10.0
# The bound on recording a task stopped for a lost lease as FAILED, before the write is handed
# to the state writer's retries instead (PostgreSQL away too).
FENCE_WRITE_S = 10.0


class TaskRunning(FailedPrecondition):
    """A start over an environment with an unfinished task, without allow_concurrent; the edge
    sends ``task_id`` along (gRPC trailing metadata, REST problem member) so clients can open it."""

    reason = "task-running"

    def __init__(self, running: TaskRecord) -> None:
        self.task_id = running.task_id
        super().__init__(
            f"environment {running.environment_id!r} already has task {running.task_id} ({running.state.value}); "
            "follow or cancel that task, or start with allow_concurrent to run another beside it"
        )


class TaskAction(enum.StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    FOCUS = "focus"


def raise_if_cancel_was_swallowed() -> None:
    """Re-raise a cancellation of the current task that a library swallowed.

    A safety net: ``storage/redis_client.py`` already keeps redis-py off ``asyncio.wait_for``
    (which on Python 3.11 can drop a cancellation), but any library that swallows one would let
    a cancelled watcher or runner carry on. ``Task.cancelling()`` still counts the request, so
    loops call this between steps.
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
    # Why the task was stopped for a lost lease ("": it was not): its cancellation then ends it FAILED.
    stop_reason: str = ""

    @property
    def paused(self) -> bool:
        return not self.running.is_set()


@dataclasses.dataclass(frozen=True, slots=True)
class StartRules:
    """Settings a start obeys."""

    # SPOTON_RATE_LIMIT_TASK_STARTS_PER_MIN, per principal.
    starts_per_min: int
    # SPOTON_IDEMPOTENCY_KEY_TTL_S: how long a start's idempotency key is remembered.
    idempotency_key_ttl_s: float


class TaskControl:
    def __init__(
        self,
        records: TaskRecords,
        queries: TaskQueries,
        environments: Environments,
        runners: TaskRunners,
        states: TaskStates,
        outbox: EventPublisher,
        lease: Lease,
        files: ExportFiles,
        rules: StartRules,
        *,
        keys: KeyLookup,
        zones: Callable[[str], Awaitable[list[Zone]]] | None = None,
        audit: Audit | None = None,
        relay: ControlRelay | None = None,
    ) -> None:
        self._records = records
        self._queries = queries
        self._environments = environments
        self._runners = runners
        # A task's state writes outlive a PostgreSQL outage (retried, latest wins) instead of failing it.
        self._states = states
        self._outbox = outbox
        self._lease = lease
        self._files = files
        self._rules = rules
        self._start_limit = RateLimiter("task starts", per_minute=rules.starts_per_min)
        self._keys = keys
        # The zones whose entry and exit become events.
        self._zones = zones
        self._audit = audit
        # Passes pause, resume and cancel to the replica running the task; None: refuse them here.
        self._relay = relay
        self._live: dict[str, _Live] = {}
        # Self-fencing: once the lease is lost, another replica may fail these tasks over.
        lease.on_lost(self.stop_for_lost_lease)

    @audited(
        AuditAction.TASK_START,
        lambda environment_id, *_, **__: f"environment/{environment_id}",
        lambda record: f"task/{record.task_id}",
    )
    async def start(
        self,
        environment_id: str,
        camera_ids: list[str],
        *,
        detection_threshold: float | None = None,
        idempotency_key: str = "",
        allow_concurrent: bool = False,
    ) -> TaskRecord:
        """``detection_threshold`` overrides SPOTON_DETECTION_THRESHOLD for this task (jobs set it).
        A retry with the ``idempotency_key`` of an earlier start answers that start's task.
        TaskRunning while another task over the environment is unfinished, unless
        ``allow_concurrent`` (checked in the transaction that records the task: two racing
        starts, on any replicas, never both win)."""
        request = {"environment_id": environment_id, "camera_ids": camera_ids, "threshold": detection_threshold}
        claim = claim_for(Operation.START_TASK, idempotency_key, request, self._rules.idempotency_key_ttl_s)
        if claim is not None and (holder := await self._keys.lookup(claim)) is not None:
            return await self._queries.get(replayed(claim, holder))
        if not environment_id:
            raise InvalidArgument("environment_id is required")
        self._start_limit.take(current_principal())
        env = self._environments.get(environment_id)
        if camera_ids:
            known_cameras(env, camera_ids)
            cameras = tuple(c for c in env.cameras if c.camera_id in camera_ids)
            disabled = [c.camera_id for c in cameras if not c.enabled]
            if disabled:
                raise FailedPrecondition(f"cameras {disabled} are disabled; enable them or leave them out")
        else:
            cameras = tuple(c for c in env.cameras if c.enabled)
        cameras = _task_cameras(environment_id, cameras, explicit=bool(camera_ids))

        zones = tuple(await self._zones(environment_id)) if self._zones is not None else ()
        total = self._runners.total_frames(cameras)

        async def create() -> TaskRecord:
            record = await self._records.insert_task(
                environment_id, [c.camera_id for c in cameras], total, claim=claim, concurrent=allow_concurrent
            )
            # Registered before the first await, so a control call right after StartTask finds it.
            live = self._live[record.task_id] = _Live()
            await self._outbox.set_live_state(record.task_id, {"replica": self._lease.replica_id})
            await self._emit(record.task_id, StatusUpdate(TaskState.QUEUED, 0.0, "queued"))
            run = self._run(record, env, cameras, total, live, zones, detection_threshold)
            live.task = asyncio.create_task(run, name=f"task-{record.task_id}")
            return record

        try:
            # Shielded: a caller gone mid-way (its deadline) must not leave a recorded task that
            # never runs, which a retry with the same idempotency key would then be answered with.
            return await asyncio.shield(create())
        except KeyTaken as taken:  # a request with the same key got there first
            assert claim is not None  # only a claim is taken
            return await self._queries.get(replayed(claim, taken.holder))
        except EnvironmentBusy as busy:
            raise TaskRunning(busy.running) from None

    async def control(self, task_id: str, action: TaskAction, focus_global_id: int = 0) -> TaskRecord:
        """Apply ``action``; FailedPrecondition when the task's state does not allow it."""
        audit_action = f"task.{action}"  # task.pause, task.resume, task.cancel, task.focus
        done = self._control(task_id, action, focus_global_id)
        return await run_audited(self._audit, audit_action, done, f"task/{task_id}")

    async def control_here(self, request: ControlRequest) -> None:
        """Apply a control another replica forwarded (its caller was checked there); never
        forwarded again, so a task that no longer runs here is refused, not passed around."""
        await self._control(request.task_id, TaskAction(request.action), request.focus_global_id, forward=False)

    async def cancel_all(self) -> None:
        """Cancel every task this replica runs and wait for them to end."""
        tasks = [live.task for live in self._live.values() if live.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop_for_lost_lease(self) -> list[str]:
        """Stop every task this replica runs, because its lease lapsed; returns their ids.

        Another replica may already have failed them over (it saw the lease lapse), so they must
        not go on here. Each runner is cancelled and ends FAILED with a reason naming this
        replica, unless another replica recorded an end first. Tasks already ending (completing,
        or cancelled by a control) are left to end as they were going to.
        """
        reason = (
            f"replica {self._lease.replica_id}, which ran it, could not renew its lease for over "
            f"{self._lease.ttl_s:g} s and stopped it, as another replica may "
            "have failed it over; start the task again"
        )
        stopped = []
        for task_id, live in self._live.items():
            if live.task is None or live.task.done() or live.ending or live.cancelling:
                continue
            # Marked cancelling, so a control arriving now is told the task is ending.
            live.cancelling, live.stop_reason = True, reason
            live.task.cancel()
            stopped.append(task_id)
        if stopped:
            log.error("stopped %d task(s) for the lost lease of %s: %s", len(stopped), self._lease.replica_id, stopped)
        return stopped

    async def close(self) -> None:
        """Give state writes still waiting for PostgreSQL a last chance."""
        await self._states.close()

    async def _control(
        self, task_id: str, action: TaskAction, focus_global_id: int, *, forward: bool = True
    ) -> TaskRecord:
        record = await self._queries.get(task_id)
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
            await self._outbox.set_live_state(task_id, {"focus_global_id": focus_global_id})
            await self._emit(task_id, FocusUpdate(global_id=focus_global_id))
            return await self._queries.get(task_id)
        live = self._live.get(task_id)
        if live is None or live.task is None:
            await self._forward(record, action, forward=forward)
            return await self._queries.get(task_id)
        if action is TaskAction.CANCEL:
            await self._cancel(task_id, live)
        elif action in (TaskAction.PAUSE, TaskAction.RESUME):
            await self._pause_or_resume(task_id, live, pause=action is TaskAction.PAUSE)
        else:
            raise InvalidArgument(f"unknown action {action!r}: use pause, resume, cancel or focus")
        return await self._queries.get(task_id)

    async def _forward(self, record: TaskRecord, action: TaskAction, *, forward: bool) -> None:
        """Pass ``action`` to the replica running ``record``'s task (its id in Redis, its lease alive)."""
        if action not in (TaskAction.PAUSE, TaskAction.RESUME, TaskAction.CANCEL):
            raise InvalidArgument(f"unknown action {action!r}: use pause, resume, cancel or focus")
        task_id, me = record.task_id, self._lease.replica_id
        owner = await self._queries.owner_if_reachable(task_id)
        elsewhere = bool(owner) and owner != me
        if elsewhere and await self._lease.alive(owner):
            if forward and self._relay is not None:
                await self._relay.forward(owner, ControlRequest(task_id, action.value))
                return
            where = f"replica {owner}; send the control there"
        elif elsewhere:
            where = f"replica {owner}, whose lease has lapsed (a starting replica fails its tasks over)"
        elif owner:
            where = "no replica now (this one restarted since; it was failed over)"
        else:
            where = "another replica, which Redis cannot tell now; try again shortly"
        raise FailedPrecondition(f"task {task_id} is {record.state.value} and runs on {where}")

    async def _emit(self, task_id: str, payload: TaskEventPayload) -> None:
        await self._outbox.append(task_id, payload)

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

    async def _run(
        self,
        record: TaskRecord,
        environment: Environment,
        cameras: tuple[Camera, ...],
        total: int,  # 0 for a live task: its progress stays 0 until it is cancelled
        live: _Live,
        zones: tuple[Zone, ...],
        detection_threshold: float | None,
    ) -> None:
        task_id = record.task_id

        def fraction(frames: int) -> float:
            return frames / total if total else 0.0

        async def progress(frames: int, step: str) -> None:
            state = TaskState.PREPARING if step.startswith("preparing") else TaskState.PROCESSING
            async with live.lock:
                live.state, live.step = state, step
                if live.paused:  # a frame that was in flight when the pause came: stay PAUSED
                    state, step = TaskState.PAUSED, "paused"
                await self._set_state(task_id, state, fraction(frames), step, frames, live=live)

        async def wait_if_paused() -> None:
            raise_if_cancel_was_swallowed()  # checked once per frame
            await live.running.wait()

        async def finish(state: TaskState, step: str, frames: int, error: str = "") -> None:
            done = 1.0 if state is TaskState.COMPLETED else fraction(frames)
            async with live.lock:
                await self._set_state(task_id, state, done, step, frames, error, live=live)

        step_before_wait = live.step

        async def triton_wait(reason: str) -> None:
            """The task's step says it waits for Triton, and goes back once Triton answers."""
            nonlocal step_before_wait
            if reason:
                step_before_wait = live.step
            await progress(live.frames, reason or step_before_wait)

        async def emit(payload: TaskEventPayload) -> None:
            await self._emit(task_id, payload)

        runner = self._runners.build(
            TaskRun(
                task_id=task_id,
                environment=environment,
                cameras=cameras,
                created_at=record.created_at,
                zones=zones,
                detection_threshold=detection_threshold,
                exports_dir=self._files.directory(task_id),
                emit=emit,
                report_progress=progress,
                wait_if_paused=wait_if_paused,
                on_triton_wait=triton_wait,
            )
        )
        try:
            try:
                await runner.run()
            except asyncio.CancelledError:
                live.ending = True
                if live.stop_reason:
                    await self._fail_fenced(task_id, live, runner.frames_done)
                else:
                    await finish(TaskState.CANCELLED, "cancelled", runner.frames_done)
                raise
            except Exception as exc:
                live.ending = True
                log.exception("task %s failed", task_id)
                hint = " (is Triton up?)" if isinstance(exc, Unavailable) and "Triton" not in str(exc) else ""
                await finish(TaskState.FAILED, "failed", runner.frames_done, f"{exc}{hint}")
            else:
                live.ending = True
                await finish(TaskState.COMPLETED, "completed", runner.frames_done)
        finally:
            self._live.pop(task_id, None)

    async def _fail_fenced(self, task_id: str, live: _Live, frames: int) -> None:
        """Record a task stopped for a lost lease as FAILED, and announce it, unless another
        replica failed it over first (then it already sent the task's final event)."""
        reason = live.stop_reason
        async with live.lock:
            live.frames = frames
            try:
                async with asyncio.timeout(FENCE_WRITE_S):
                    took_effect = task_id in await self._records.fail_unfinished_tasks(reason, [task_id])
            except Exception as exc:  # PostgreSQL away too: whether another replica got there first is unknown
                log.warning("task %s: recording its stop for the lost lease is retried (%s)", task_id, exc)
                # Retried until written; a record another replica failed first stays as it is.
                update = TaskStateUpdate(task_id, TaskState.FAILED, live.progress, "interrupted", frames, reason)
                await self._states.write(update)
                # Announced all the same: a task whose stream never ends would hold its watchers
                # forever, while a second final event comes after the first, which ends them.
                took_effect = True
            if not took_effect:
                log.info("task %s was failed over by another replica before this one stopped it", task_id)
                return
            await self._outbox.set_live_state(
                task_id, {"state": TaskState.FAILED.value, "step": "interrupted", "frames": frames}
            )
            await self._emit(task_id, StatusUpdate(TaskState.FAILED, live.progress, "interrupted", reason))

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
        await self._outbox.set_live_state(
            task_id, {"state": state.value, "progress": progress, "step": step, "frames": frames}
        )
        await self._emit(task_id, StatusUpdate(state, progress, step, error))


def _task_cameras(environment_id: str, cameras: tuple[Camera, ...], *, explicit: bool) -> tuple[Camera, ...]:
    """The cameras a task runs over: recorded ones (sub-videos), else live ones (RTSP/HTTP).

    A task is one or the other: recorded batches are processed to their end, live pulls go on
    until the task is cancelled. Without an explicit selection, recorded cameras come first.
    """
    recorded = tuple(c for c in cameras if c.sub_videos)
    pulled = tuple(c for c in cameras if c.is_pulled)
    if explicit and recorded and pulled:
        raise InvalidArgument(
            f"cameras {[c.camera_id for c in recorded]} are recorded and {[c.camera_id for c in pulled]} are live; "
            "a task runs over one kind: start one task for each"
        )
    if recorded or pulled:
        return recorded or pulled
    raise FailedPrecondition(
        f"environment {environment_id!r} has no enabled cameras with sub-videos or a live (RTSP/HTTP) source"
    )
