"""The composition root's part for tasks: the task services over their adapters and the pipeline.

The services (``services/task_*.py``) know only their ports; here they meet the concrete
PostgreSQL and Redis adapters, the settings, and the pipeline's runners
(:class:`PipelineRunners`, which the task services see as ``TaskRunners``).
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.environment import Camera
from spoton_inference.domain.errors import NotFound
from spoton_inference.domain.zones import Zone
from spoton_inference.pipeline.batch_downloads import BatchDownloads, Recordings, remote_batches, with_local_paths
from spoton_inference.pipeline.camera_shard import CameraShard, Pace, ShardOutput
from spoton_inference.pipeline.exports import EXPORT_MEDIA_TYPES, rewrite_mot
from spoton_inference.pipeline.live_pull import LivePulls, PullOptions
from spoton_inference.pipeline.live_runner import LiveTaskRunner
from spoton_inference.pipeline.runner import RunnerPorts, ShardLinks, TaskPlan, TaskRunner, batch_lengths
from spoton_inference.pipeline.tracking_settings import tracking_setup
from spoton_inference.pipeline.triton_models import OutageWait
from spoton_inference.pipeline.triton_pool import TritonPool
from spoton_inference.services.audit import Audit
from spoton_inference.services.catalog import Catalog
from spoton_inference.services.task_control import StartRules, TaskControl
from spoton_inference.services.task_exports import ExportFiles
from spoton_inference.services.task_ports import ControlRelay, TaskRun
from spoton_inference.services.task_queries import TaskQueries
from spoton_inference.services.task_recovery import TaskRecovery
from spoton_inference.services.task_watch import TaskWatch
from spoton_inference.services.tasks import TaskManager
from spoton_inference.settings import Settings
from spoton_inference.storage.camera_shards import RedisShardLinks, RunShard, ShardOffer
from spoton_inference.storage.event_outbox import EventOutbox
from spoton_inference.storage.history_writer import HistoryWriter
from spoton_inference.storage.idempotency_store import IdempotencyStore
from spoton_inference.storage.identity_sync import IdentitySync, snapshot
from spoton_inference.storage.postgres import Database
from spoton_inference.storage.redis_client import UNREACHABLE
from spoton_inference.storage.redis_events import RedisEventLog
from spoton_inference.storage.redis_watch import SharedWaits
from spoton_inference.storage.replicas import ReplicaLease
from spoton_inference.storage.task_states import TaskStateWriter
from spoton_inference.storage.task_store import TaskStore
from spoton_inference.storage.track_writer import TrackPointWriter
from spoton_inference.tracking.identities import IdentityState


class _FlushedRun:
    """A runner whose run ends once what it stored is written (track points, history)."""

    def __init__(self, runner: TaskRunner | LiveTaskRunner, writer: TrackPointWriter, history: HistoryWriter | None):
        self._runner = runner
        self._writer = writer
        self._history = history

    @property
    def frames_done(self) -> int:
        return self._runner.frames_done

    async def run(self) -> None:
        await self._runner.run()
        await self._writer.flush()
        if self._history is not None:
            await self._history.flush()


@dataclasses.dataclass(frozen=True, slots=True)
class PipelineRunners:
    """Task runners over the pipeline: recorded batches (TaskRunner) or live pulls (LiveTaskRunner)."""

    settings: Settings
    models: TritonPool
    writer: TrackPointWriter
    # Pulls of running live tasks, by (environment id, camera id): snapshots read them.
    live_pulls: LivePulls
    # Run before every live connection (services/source_policy.py).
    check_source: Callable[[CameraSource], None]
    identities: IdentitySync | None = None
    history: HistoryWriter | None = None
    # Builds a task's links to camera shards on other replicas (None: every camera runs here).
    shard_links: Callable[[TaskRun], ShardLinks] | None = None
    # Where sub-videos in object storage are made local (files/recording_cache.RecordingCache).
    recordings: Recordings | None = None

    def total_frames(self, cameras: tuple[Camera, ...]) -> int:
        return sum(batch_lengths(cameras))

    def build(self, run: TaskRun) -> _FlushedRun:
        settings = self.settings
        if run.detection_threshold is not None:
            settings = dataclasses.replace(settings, detection_threshold=run.detection_threshold)
        plan = TaskPlan(run.task_id, run.environment, with_local_paths(run.cameras, self.recordings), run.created_at)
        ports = RunnerPorts(
            models=OutageWait(self.models, settings.triton_outage_wait_s, on_wait=run.on_triton_wait),
            emit=run.emit,
            store_points=self.writer.add,
            report_progress=run.report_progress,
            media=settings.media,
            exports_dir=run.exports_dir,
            wait_if_paused=run.wait_if_paused,
            identities_seen=self._identity_mirror(plan),
            tracking_setup=functools.partial(tracking_setup, settings),
            history=self.history,
            zones=run.zones,
            cameras_per_shard=settings.max_cameras_per_replica,
            shards=self.shard_links(run) if self.shard_links is not None and not plan.is_live else None,
            recordings=self.recordings,
        )
        runner: TaskRunner | LiveTaskRunner
        if plan.is_live:
            options = PullOptions(
                timeout_s=settings.source_connect_timeout_s,
                reconnect_max_s=settings.source_reconnect_max_s,
                check_source=self.check_source,
            )
            environment = dataclasses.replace(plan.environment, cameras=plan.cameras)
            runner = LiveTaskRunner(run.task_id, environment, ports, options, self.live_pulls)
        else:
            runner = TaskRunner(plan, ports)
        return _FlushedRun(runner, self.writer, self.history)

    def _identity_mirror(self, plan: TaskPlan) -> Callable[[list[IdentityState]], None] | None:
        """Hands the task's identities to the gallery (scope: the task) and embedding history."""
        if self.identities is None:
            return None
        sync, start = self.identities, plan.created_at.timestamp()
        task_uuid, env_id, fps = uuid.UUID(plan.task_id), plan.environment.environment_id, plan.cameras[0].fps

        def offer(states: list[IdentityState]) -> None:
            entries, rows = snapshot(states, task_id=task_uuid, environment_id=env_id, start_time=start, fps=fps)
            sync.offer(plan.task_id, entries, rows)

        return offer


def shard_links(settings: Settings, client: aioredis.Redis, replica: str) -> Callable[[TaskRun], ShardLinks]:
    """Per task, its links to the replicas that take some of its cameras (storage/camera_shards.py)."""

    def links(run: TaskRun) -> ShardLinks:
        return RedisShardLinks(
            client,
            task_id=run.task_id,
            replica=replica,
            environment_id=run.environment.environment_id,
            task_camera_ids=[c.camera_id for c in run.cameras],
            detection_threshold=run.detection_threshold,
            ttl_s=settings.replica_lease_ttl_s,
        )

    return links


def shard_runner(settings: Settings, catalog: Catalog, models: TritonPool, recordings: Recordings | None) -> RunShard:
    """Runs a shard another replica's task offered: its cameras, from the shared catalogue, with
    this replica's models and the tracking settings the task runs with; recordings in object
    storage are fetched into this replica's cache, a batch ahead."""

    async def run(offer: ShardOffer, output: ShardOutput, pace: Pace) -> None:
        try:
            environment = catalog.get(offer.environment_id)
        except NotFound:  # registered on the owner a moment ago: the announcement may be on its way
            await catalog.reload()
            environment = catalog.get(offer.environment_id)
        by_id = {c.camera_id: c for c in with_local_paths(environment.cameras, recordings)}
        task_cameras = tuple(by_id[c] for c in offer.task_camera_ids)
        values = settings
        if offer.detection_threshold is not None:
            values = dataclasses.replace(settings, detection_threshold=offer.detection_threshold)
        mine = tuple(by_id[c] for c in offer.camera_ids)
        downloads = BatchDownloads(remote_batches(mine), recordings, f"{offer.task_id}:shard-{offer.shard}")
        shard = CameraShard(
            mine,
            batch_lengths(task_cameras),
            OutageWait(models, values.triton_outage_wait_s),
            tracking_setup(values, task_cameras[0].fps),
            output,
            pace,
            downloads,
        )
        try:
            await shard.run()
        finally:
            downloads.close()

    return run


def task_queries(settings: Settings, db: Database, events: RedisEventLog, outbox: EventOutbox) -> TaskQueries:
    """Reading tasks (records in PostgreSQL, the live part in Redis): needs no other service, so
    the catalogue and analytics can read tasks through it before the rest is built."""
    return TaskQueries(TaskStore(db), events, outbox, redis_timeout_s=settings.redis_timeout_s, unreachable=UNREACHABLE)


def build_tasks(
    settings: Settings,
    db: Database,
    events: RedisEventLog,
    catalog: Catalog,
    models: TritonPool,
    writer: TrackPointWriter,
    identities: IdentitySync | None = None,
    *,
    outbox: EventOutbox,
    lease: ReplicaLease,
    history: HistoryWriter | None = None,
    zones: Callable[[str], Awaitable[list[Zone]]] | None = None,
    live_pulls: LivePulls | None = None,
    audit: Audit | None = None,
    queries: TaskQueries | None = None,
    relay: ControlRelay | None = None,
    shards: Callable[[TaskRun], ShardLinks] | None = None,
    recordings: Recordings | None = None,
) -> TaskManager:
    """The task services over PostgreSQL ``db`` and Redis ``events``; ``queries`` is the
    :func:`task_queries` already built, if any (a new one otherwise)."""
    records = TaskStore(db)
    files = ExportFiles(settings.media_root, settings.media_url_prefix, EXPORT_MEDIA_TYPES)
    queries = queries if queries is not None else task_queries(settings, db, events, outbox)
    runners = PipelineRunners(
        settings,
        models,
        writer,
        live_pulls if live_pulls is not None else LivePulls(),
        lambda source: catalog.source_policy.check(source),  # the catalogue's policy when the pull connects
        identities,
        history,
        shards,
        recordings,
    )
    states = TaskStateWriter(
        lambda u: records.update_task(
            u.task_id,
            state=u.state,
            progress=u.progress,
            step=u.step,
            frames_processed=u.frames_processed,
            error=u.error,
        )
    )
    control = TaskControl(
        records,
        queries,
        catalog,
        runners,
        states,
        outbox,
        lease,
        files,
        StartRules(settings.rate_limit_task_starts_per_min, settings.idempotency_key_ttl_s),
        keys=IdempotencyStore(db),
        zones=zones,
        audit=audit,
        relay=relay,
    )
    watching = TaskWatch(
        records,
        queries,
        events,
        SharedWaits(events, settings.redis_timeout_s, settings.redis_watch_connections),
        lease,
        redis_timeout_s=settings.redis_timeout_s,
        unreachable=UNREACHABLE,
    )
    recovery = TaskRecovery(
        records, queries, outbox, lease, files, drain_track_points=writer.drain, rewrite_exports=rewrite_mot
    )
    return TaskManager(queries, control, watching, recovery, files, models)
