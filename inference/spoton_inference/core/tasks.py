"""Processing tasks: start, inspect, list, control, watch, and fetch their exports.

Task state lives in PostgreSQL (the record) and Redis (live state and the event log), never
only in this process: any replica serves any task's record and events, and a restarted
service finds every task, and marks the ones it was running as failed with a reason.

Redis may go away mid-task: events and live state then wait in the outbox (see
``storage/event_outbox.py``) and tracking goes on; open watches wait for Redis and go on
where they were, new ones are told UNAVAILABLE.

Controls: pause holds the runner between frames (it waits before tracking the next one),
resume lets it go on, cancel cancels its asyncio task (the runner stops at its next await and
the task ends CANCELLED), and focus records a global person id in the live state and
announces it as a ``focus_update`` event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path

from spoton_inference.core.audit import Audit, AuditAction, audited, run_audited
from spoton_inference.core.catalog import Catalog
from spoton_inference.core.idempotency import Operation, claim_for, replayed
from spoton_inference.core.request_args import decode_token, encode_token, known_cameras, parse_uuid
from spoton_inference.core.shared_lookups import SharedLookups
from spoton_inference.domain.environment import Camera
from spoton_inference.domain.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from spoton_inference.domain.events import FocusUpdate, StatusUpdate, TaskEvent, TaskEventPayload, TaskState
from spoton_inference.domain.principal import current_principal
from spoton_inference.domain.rate_limit import RateLimiter
from spoton_inference.domain.scoping import scope, visible
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.domain.zones import Zone
from spoton_inference.pipeline.exports import EXPORT_MEDIA_TYPES, rewrite_mot
from spoton_inference.pipeline.live_pull import LivePull, PullOptions
from spoton_inference.pipeline.live_runner import LiveTaskRunner
from spoton_inference.pipeline.runner import RunnerPorts, TaskPlan, TaskRunner, batch_lengths
from spoton_inference.pipeline.tracking_settings import tracking_setup
from spoton_inference.pipeline.triton_models import OutageWait, TritonModels
from spoton_inference.settings import Settings
from spoton_inference.storage.event_outbox import EventOutbox
from spoton_inference.storage.history_writer import HistoryWriter
from spoton_inference.storage.idempotency_store import IdempotencyStore, KeyTaken
from spoton_inference.storage.identity_sync import IdentitySync, snapshot
from spoton_inference.storage.postgres import Database, EnvironmentBusy
from spoton_inference.storage.redis_client import UNREACHABLE
from spoton_inference.storage.redis_events import EventsExpired, RedisEventLog
from spoton_inference.storage.redis_watch import SharedWaits
from spoton_inference.storage.replicas import ReplicaLease
from spoton_inference.storage.task_states import TaskStateUpdate, TaskStateWriter
from spoton_inference.storage.track_writer import TrackPointWriter
from spoton_inference.tracking.identities import IdentityState

log = logging.getLogger(__name__)
MAX_PAGE_SIZE = 200
# How long ControlTask(cancel) waits for the runner to stop before answering anyway.
CANCEL_WAIT_S = 10.0
# How long recovery waits for the track-point journal of a dead process to be replayed.
RECOVER_DRAIN_S = 30.0
# How often an open watch tries Redis again while it is unreachable.
WATCH_RETRY_S = 0.5
# Rounds of shared waits (about a second each) that a finished task's stream must stay over,
# with no final event, before a watcher ends without one.
WATCH_OVER_ROUNDS = 3
# How long the answer to "has the stored task ended?" serves every watcher of the task; the
# final event, not this, ends a watch that the runner finishes.
WATCH_FINAL_FRESH_S = 0.5
UNFINISHED = tuple(s for s in TaskState if not s.is_final)


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
        *,
        outbox: EventOutbox,
        lease: ReplicaLease,
        history: HistoryWriter | None = None,
        zones: Callable[[str], Awaitable[list[Zone]]] | None = None,
        live_pulls: MutableMapping[tuple[str, str], LivePull] | None = None,
        audit: Audit | None = None,
    ) -> None:
        self._settings = settings
        self._audit = audit
        self._start_limit = RateLimiter("task starts", per_minute=settings.rate_limit_task_starts_per_min)
        # Pulls of running live tasks, by (environment id, camera id): snapshots read them.
        self._live_pulls = live_pulls if live_pulls is not None else {}
        self._outbox = outbox
        self._lease = lease
        self._identities = identities
        # Identities and events for analytics, and the zones whose entry and exit become events.
        self._history = history
        self._zones = zones
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
        # Watchers of one task share one blocking Redis read, on connections of its own, so they
        # do not use up the pool.
        self.shared_waits = SharedWaits(events, settings.redis_timeout_s, settings.redis_watch_connections)
        # ... and one PostgreSQL lookup of whether the task has ended, not one each per event.
        self._stored_finals = SharedLookups(self._read_stored_final, WATCH_FINAL_FRESH_S)

    async def recover(self) -> None:
        """Tasks a dead process left unfinished cannot resume mid-frame: fail them, visibly.

        Those are this replica's own (it was restarted) and those of replicas whose lease
        lapsed; tasks of live replicas are theirs. A task without an owner yet is left alone
        while it is young: its replica may be writing the owner right now.
        """
        reason = "interrupted by a restart of the inference service; start the task again"
        me = self._lease.replica_id
        young = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self._lease.ttl_s)
        orphans = []
        for record in await self._all_unfinished():
            owner = await self._owner(record.task_id)
            if owner == me or (not await self._lease.alive(owner) if owner else record.created_at < young):
                orphans.append(record)
        if orphans:
            await self._rebuild_exports(orphans)
        for task_id in await self._db.fail_unfinished_tasks(reason, [r.task_id for r in orphans]):
            await self._emit(task_id, StatusUpdate(TaskState.FAILED, 0.0, "interrupted", reason))

    async def _rebuild_exports(self, records: list[TaskRecord]) -> None:
        """The MOT exports of tasks a dead process left, rewritten from their stored track points.

        It died with export lines and track points in its buffers, so the files and the table
        disagree. The table, once the writer has replayed that process's journal, is what was
        kept; the exports (those under this media root) are made to say the same.
        """
        try:
            async with asyncio.timeout(RECOVER_DRAIN_S):
                await self._writer.drain()
        except TimeoutError:
            log.warning(
                "the track-point journal was not replayed within %g s; exports rebuilt without it", RECOVER_DRAIN_S
            )
        for record in records:
            directory = self._exports_dir(record.task_id)
            if not directory.is_dir():
                continue
            points = await self._db.task_track_points(record.task_id)
            written = await asyncio.to_thread(rewrite_mot, directory, record.camera_ids, points)
            log.info(
                "task %s was interrupted: its exports now hold its %d stored track points", record.task_id, written
            )

    async def _all_unfinished(self) -> list[TaskRecord]:
        found: list[TaskRecord] = []
        for state in UNFINISHED:
            before = None
            while True:
                rows = await self._db.list_tasks(limit=MAX_PAGE_SIZE, before=before, state=state)
                found += rows
                if len(rows) < MAX_PAGE_SIZE:
                    break
                before = (rows[-1].created_at, rows[-1].task_id)
        return found

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
        claim = claim_for(Operation.START_TASK, idempotency_key, request, self._settings.idempotency_key_ttl_s)
        if claim is not None and (holder := await IdempotencyStore(self._db).lookup(claim)) is not None:
            return await self.get(replayed(claim, holder))
        if not environment_id:
            raise InvalidArgument("environment_id is required")
        self._start_limit.take(current_principal())
        env = self._catalog.get(environment_id)
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
        total = sum(batch_lengths(cameras))
        settings = self._settings
        if detection_threshold is not None:
            settings = dataclasses.replace(settings, detection_threshold=detection_threshold)

        async def create() -> TaskRecord:
            record = await self._db.insert_task(
                environment_id, [c.camera_id for c in cameras], total, claim=claim, concurrent=allow_concurrent
            )
            plan = TaskPlan(record.task_id, env, cameras, record.created_at)
            # Registered before the first await, so a control call right after StartTask finds it.
            live = self._live[record.task_id] = _Live()
            await self._outbox.set_live_state(record.task_id, {"replica": self._lease.replica_id})
            await self._emit(record.task_id, StatusUpdate(TaskState.QUEUED, 0.0, "queued"))
            live.task = asyncio.create_task(self._run(plan, live, zones, settings), name=f"task-{record.task_id}")
            return record

        try:
            # Shielded: a caller gone mid-way (its deadline) must not leave a recorded task that
            # never runs, which a retry with the same idempotency key would then be answered with.
            return await asyncio.shield(create())
        except KeyTaken as taken:  # a request with the same key got there first
            assert claim is not None  # only a claim is taken
            return await self.get(replayed(claim, taken.holder))
        except EnvironmentBusy as busy:
            raise TaskRunning(busy.running) from None

    async def get(self, task_id: str) -> TaskRecord:
        record = await self._db.get_task(parse_uuid(task_id, "task id"))
        if record is None or not visible(record.environment_id):
            raise NotFound(f"task {task_id!r} not found")
        return record

    async def last_sequence(self, task_id: str) -> int:
        """The newest event's sequence; 0 while Redis is unreachable or frozen (the record answers
        alone, within SPOTON_REDIS_TIMEOUT_S)."""
        if self._outbox.holding:  # Redis known to be away: do not wait on it again
            return 0
        try:
            async with asyncio.timeout(self._settings.redis_timeout_s):
                return await self._events.last_sequence(task_id)
        except UNREACHABLE:
            return 0

    async def focus(self, task_id: str) -> int:
        """The global person id the task is focused on; 0 for none, and while Redis is unreachable."""
        if self._outbox.holding:
            return 0
        try:
            async with asyncio.timeout(self._settings.redis_timeout_s):
                return int((await self._events.get_live_state(task_id)).get("focus_global_id", 0))
        except UNREACHABLE:
            return 0

    async def models_ready(self) -> bool:
        """Whether Triton answers with its models loaded; a frozen Triton is not (bounded wait)."""
        return all((await self._models.ready()).values())

    async def unfinished(self, environment_id: str) -> list[TaskRecord]:
        """Tasks over ``environment_id`` that have not ended, from the record (any replica)."""
        found: list[TaskRecord] = []
        for state in UNFINISHED:
            found += await self._db.list_tasks(limit=MAX_PAGE_SIZE, environment_id=environment_id, state=state)
        return found

    async def control(self, task_id: str, action: TaskAction, focus_global_id: int = 0) -> TaskRecord:
        """Apply ``action``; FailedPrecondition when the task's state does not allow it."""
        audit_action = f"task.{action}"  # task.pause, task.resume, task.cancel, task.focus
        done = self._control(task_id, action, focus_global_id)
        return await run_audited(self._audit, audit_action, done, f"task/{task_id}")

    async def _control(self, task_id: str, action: TaskAction, focus_global_id: int) -> TaskRecord:
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
            await self._outbox.set_live_state(task_id, {"focus_global_id": focus_global_id})
            await self._emit(task_id, FocusUpdate(global_id=focus_global_id))
            return await self.get(task_id)
        live = self._live.get(task_id)
        if live is None or live.task is None:
            try:
                owner = await self._owner(task_id) or "another replica"
            except UNREACHABLE:
                owner = "another replica"
            raise FailedPrecondition(
                f"task {task_id} is {record.state.value} and runs on {owner}, not on this replica "
                f"({self._lease.replica_id}); send the control to the replica that started it"
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
        """A page of tasks, newest first, and the token of the next page ('' at the end); only
        those of environments the caller may see."""
        size = min(max(page_size or 50, 1), MAX_PAGE_SIZE)
        before = decode_token(page_token) if page_token else None
        if environment_id and not visible(environment_id):
            return [], ""  # as for an environment with no tasks: nothing is told of it
        rows = await self._db.list_tasks(
            limit=size + 1, before=before, environment_id=environment_id, state=state, environment_ids=scope()
        )
        more = len(rows) > size
        rows = rows[:size]
        token = encode_token(rows[-1].created_at, rows[-1].task_id) if more else ""
        return rows, token

    async def check_resume(self, task_id: str, after: int) -> bool:
        """Whether a watch from ``after`` has anything to deliver, now or later.

        Raises EventsExpired (OUT_OF_RANGE) when events after ``after`` have left the retention
        window, or when ``after`` is past the newest event, so a watcher learns it must start
        over before it is told the stream is open. False when the task is over and nothing
        follows ``after``.
        """
        record = await self.get(task_id)
        try:
            async with asyncio.timeout(self._settings.redis_timeout_s):
                last = await self._events.last_sequence(record.task_id)
                # Not read past the newest event (refused below): Redis refuses stream IDs past 2**64 - 1.
                pending = await self._events.read(record.task_id, after, block_ms=0, count=1) if after <= last else []
        except UNREACHABLE as exc:
            raise Unavailable(
                f"the events of task {record.task_id} are in Redis, which cannot be reached ({exc}); the task "
                f"goes on and its events wait for Redis: retry WatchTask with after_sequence={after} shortly"
            ) from exc
        if after > last:
            raise EventsExpired(
                f"after_sequence {after} is past the newest event ({last}) of task {record.task_id}; "
                "resume from a sequence number you received"
            )
        if pending:
            return True
        try:
            async with asyncio.timeout(self._settings.redis_timeout_s):
                return not record.state.is_final or not await self._stream_over(record.task_id)
        except UNREACHABLE as exc:
            raise Unavailable(f"Redis cannot be reached ({exc}); retry WatchTask shortly") from exc

    async def watch(self, task_id: str, after: int) -> AsyncIterator[TaskEvent]:
        """Events after ``after`` until the task ends (its final status update is the last).

        Also ends when the stored task is final, no event is pending and the replica that ran
        it is gone, so a task whose runner died before its last event cannot hold a watcher
        forever (while that replica lives, its final event may still wait in its outbox).
        While Redis is unreachable it waits, then goes on after the last event it gave: nothing
        is lost, since events wait in the outbox and take their sequence numbers on arrival.
        """
        record = await self.get(task_id)
        redis_timeout_s = self._settings.redis_timeout_s
        over_rounds = 0
        self.open_watches += 1
        try:
            while True:
                raise_if_cancel_was_swallowed()
                try:
                    # Never blocking in Redis: the wait below is shared with the task's other watchers.
                    async with asyncio.timeout(redis_timeout_s):
                        events = await self._events.read(record.task_id, after, block_ms=0)
                except UNREACHABLE:
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
                    except UNREACHABLE:
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

    async def _stream_over(self, task_id: str) -> bool:
        """Whether nothing more will follow on the stream of a task whose record is final: its
        newest event is the final status, or no live replica is left to publish one."""
        newest = await self._events.newest(task_id)
        if newest is not None and isinstance(newest.payload, StatusUpdate) and newest.payload.state.is_final:
            return True
        owner = await self._owner(task_id)
        return not owner or not await self._lease.alive(owner)

    async def _owner(self, task_id: str) -> str:
        """The replica that runs (or ran) the task, from its live state; "" if none is recorded."""
        return (await self._events.get_live_state(task_id)).get("replica", "")

    async def _stored_final(self, task_id: str) -> bool:
        """Whether the stored task has ended; False while PostgreSQL is away (watchers go on).

        Shared by the task's watchers (see ``WATCH_FINAL_FRESH_S``); each was scoped on starting.
        """
        return await self._stored_finals.get(task_id)

    async def _read_stored_final(self, task_id: str) -> bool:
        try:
            record = await self._db.get_task(parse_uuid(task_id, "task id"))
        except Exception as exc:  # any database failure
            log.debug("cannot read task %s from PostgreSQL (%s); watching on", task_id, exc)
            return False
        if record is None:
            raise NotFound(f"task {task_id!r} not found")  # deleted (with its job) while watched
        return record.state.is_final

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
        await self.shared_waits.close()
        await self._states.close()

    def _exports_dir(self, task_id: str) -> Path:
        return self._settings.media_root / "tasks" / task_id / "exports"

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

    async def _run(self, plan: TaskPlan, live: _Live, zones: tuple[Zone, ...], settings: Settings) -> None:
        task_id = plan.task_id
        total = plan.total_frames  # 0 for a live task: its progress stays 0 until it is cancelled

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

        ports = RunnerPorts(
            models=OutageWait(self._models, settings.triton_outage_wait_s, on_wait=triton_wait),
            emit=lambda payload: self._emit(task_id, payload),
            store_points=self._writer.add,
            report_progress=progress,
            media=self._settings.media,
            exports_dir=self._exports_dir(task_id),
            wait_if_paused=wait_if_paused,
            identities_seen=self._identity_mirror(plan),
            tracking_setup=functools.partial(tracking_setup, settings),
            history=self._history,
            zones=zones,
        )
        runner: TaskRunner | LiveTaskRunner
        if plan.is_live:
            options = PullOptions(
                timeout_s=settings.source_connect_timeout_s,
                reconnect_max_s=settings.source_reconnect_max_s,
                check_source=self._catalog.source_policy.check,
            )
            environment = dataclasses.replace(plan.environment, cameras=plan.cameras)
            runner = LiveTaskRunner(task_id, environment, ports, options, self._live_pulls)
        else:
            runner = TaskRunner(plan, ports)
        try:
            try:
                await runner.run()
                await self._writer.flush()
                if self._history is not None:
                    await self._history.flush()
            except asyncio.CancelledError:
                live.ending = True
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
