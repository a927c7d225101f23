"""The composition root: builds the core from settings and owns its lifecycle.

Nothing here knows about gRPC; ``grpc_api`` wraps an :class:`InferenceApp`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import urllib.parse
from pathlib import Path

import numpy as np

from spoton_inference.auth_setup import bootstrap_admin, build_authenticator
from spoton_inference.domain.source_url import mask_text
from spoton_inference.embedded.restarts import read_supervision, supervision_path
from spoton_inference.files import environment_dir, heatmap_png
from spoton_inference.files.bucket_environment import load_bucket_environment
from spoton_inference.files.object_store import ObjectStore
from spoton_inference.files.recording_cache import CACHE_DIR, RecordingCache
from spoton_inference.files.video_probe import probe_video
from spoton_inference.metrics import RecordingFigures
from spoton_inference.pipeline.annotate import render_annotated
from spoton_inference.pipeline.image_decode import decode_encoded, decode_raw
from spoton_inference.pipeline.live import LiveSession, LiveStats
from spoton_inference.pipeline.live_pull import LivePulls
from spoton_inference.pipeline.source_probe import probe_source
from spoton_inference.pipeline.tracking_settings import tracking_setup
from spoton_inference.pipeline.triton_models import CROP_HEIGHT, CROP_WIDTH, crop_people
from spoton_inference.pipeline.triton_pool import TritonPool
from spoton_inference.services.analytics import Analytics
from spoton_inference.services.audit import Audit
from spoton_inference.services.camera_health import CameraHealthMonitor, HealthCheckSettings
from spoton_inference.services.camera_ops import CameraOperations, CameraOpsSettings
from spoton_inference.services.catalog import Catalog
from spoton_inference.services.detection import Detect
from spoton_inference.services.health import (
    DEGRADED,
    HEALTHY,
    STARTING,
    ComponentHealth,
    HealthChecker,
    HealthMonitor,
    HealthReport,
    SupervisedComponent,
)
from spoton_inference.services.jobs import JobManager, JobSettings
from spoton_inference.services.live_streams import LiveStreams
from spoton_inference.services.secrets import SecretBox
from spoton_inference.services.sink_dispatcher import DispatchSettings, SinkDispatcher
from spoton_inference.services.sink_policy import SinkPolicy
from spoton_inference.services.sink_service import SinkService
from spoton_inference.services.sink_stats import SinkStats
from spoton_inference.services.sinks_path import apply_sinks_path
from spoton_inference.services.source_policy import SourcePolicy
from spoton_inference.services.triton_health import triton_components
from spoton_inference.settings import Settings
from spoton_inference.sinks.registry import build_deliverers
from spoton_inference.storage.analytics_store import AnalyticsStore
from spoton_inference.storage.audit_store import AuditStore
from spoton_inference.storage.camera_health_store import CameraHealthStore
from spoton_inference.storage.camera_shards import CONNECTIONS as SHARD_CONNECTIONS
from spoton_inference.storage.camera_shards import ShardWorker
from spoton_inference.storage.catalog_store import CatalogStore
from spoton_inference.storage.catalog_sync import CatalogSync
from spoton_inference.storage.control_relay import CONNECTIONS as CONTROL_RELAY_CONNECTIONS
from spoton_inference.storage.control_relay import RedisControlRelay
from spoton_inference.storage.embedding_store import EmbeddingStore
from spoton_inference.storage.environment_store import EnvironmentStore
from spoton_inference.storage.event_outbox import EventOutbox
from spoton_inference.storage.gallery import RedisGallery
from spoton_inference.storage.history_writer import HistoryWriter
from spoton_inference.storage.idempotency_store import IdempotencyStore
from spoton_inference.storage.identity_sync import IdentitySync
from spoton_inference.storage.job_store import JobStore
from spoton_inference.storage.journal import Journal
from spoton_inference.storage.partitioning import maintain
from spoton_inference.storage.postgres import Database
from spoton_inference.storage.redis_client import UNREACHABLE, sibling
from spoton_inference.storage.redis_events import RedisEventLog
from spoton_inference.storage.replicas import ReplicaLease, replica_id
from spoton_inference.storage.sink_store import SinkNotices, SinkStore
from spoton_inference.storage.task_store import TaskStore
from spoton_inference.storage.track_writer import JOURNAL_FILE, TrackPointWriter
from spoton_inference.task_setup import build_tasks, shard_links, shard_runner, task_queries

log = logging.getLogger(__name__)
# Within the health check's own bound (PROBE_TIMEOUT_S), so an unreachable Redis is reported with its detail.
REDIS_PING_TIMEOUT_S = 1.0
# Track-point partitions ahead and history retention are checked this often.
HISTORY_MAINTENANCE_INTERVAL_S = 3600.0


class InferenceApp:
    def __init__(self, settings: Settings, db: Database, events: RedisEventLog, models: TritonPool) -> None:
        self.settings = settings
        self.db = db
        self.events = events
        self.models = models
        # Credentials (services/auth.py): None when SPOTON_AUTH_ENABLED=false.
        self.auth = build_authenticator(settings, db)
        # Who did what (task and job control, catalogue changes; the auth edge records credential use).
        self.audit = Audit(AuditStore(db), retention_days=settings.audit_retention_days)
        self.outbox = EventOutbox(events, settings.event_outbox_max)
        # Renewed every TTL/12; the fail-over sweep runs every TTL/4; lost, it stops this replica's tasks.
        self.lease = ReplicaLease(events.client, replica_id(settings), settings.replica_lease_ttl_s)
        # Pause, resume and cancel reach the replica running the task (started in create()).
        self.control_relay = RedisControlRelay(sibling(events.client, CONTROL_RELAY_CONNECTIONS), self.lease.replica_id)
        # Reading tasks needs no other service, so it is built first: the catalogue (deleting
        # what an unfinished task uses is refused) and analytics (a task's zones) read through it.
        self.task_queries = task_queries(settings, db, events, self.outbox)
        # Announces this replica's catalogue changes; started with the catalogue's reload in create().
        self.catalog_sync = CatalogSync(events.client, self.lease.replica_id)
        # Recordings in object storage (SPOTON_S3_*): one client per process (made on first use),
        # and the bounded local cache tasks fetch sub-videos into.
        self.object_store = ObjectStore.from_settings(settings)
        self.recording_cache = RecordingCache(
            settings.data_dir / CACHE_DIR, settings.recording_cache_max_bytes, self.object_store
        )
        self.catalog = Catalog(
            EnvironmentStore(db),
            CatalogStore(db),
            CameraHealthStore(db),
            environment_dir,
            in_use=self.task_queries.unfinished,
            media=settings.media,
            audit=self.audit,
            source_policy=source_policy_for(settings),
            on_change=self.catalog_sync.changed,
            buckets=functools.partial(load_bucket_environment, self.object_store, self.recording_cache.path_for),
        )
        self.writer = TrackPointWriter(
            TaskStore(db).write_track_point_batch,
            Journal(settings.data_dir / JOURNAL_FILE, settings.writer_journal_max_bytes),
            batch_size=settings.writer_batch_size,
            buffer_rows=settings.writer_buffer_rows,
        )
        self.gallery = RedisGallery.from_url(
            settings.redis_url, max_size=settings.gallery_max_size, max_age_s=settings.gallery_max_age_s
        )
        self.identities = IdentitySync(self.gallery, EmbeddingStore(db))
        self.analytics = Analytics(
            AnalyticsStore(db),
            self.catalog,
            self.task_queries.get,
            audit=self.audit,
            paint_heatmap=heatmap_png.paint,
        )
        self.history = HistoryWriter(db)
        # Live cameras being pulled, by (environment id, camera id); snapshots take their newest frame.
        self.live_pulls = LivePulls()
        # Cameras of this replica's big tasks run on others, and theirs here (storage/camera_shards.py).
        shard_client = sibling(events.client, SHARD_CONNECTIONS)
        self.shard_worker = ShardWorker(
            shard_client,
            self.lease.replica_id,
            shard_runner(settings, self.catalog, models, self.recording_cache),
            ttl_s=settings.replica_lease_ttl_s,
        )
        self.tasks = build_tasks(
            settings,
            db,
            events,
            self.catalog,
            models,
            self.writer,
            self.identities,
            outbox=self.outbox,
            lease=self.lease,
            history=self.history,
            zones=self.analytics.list_zones,
            live_pulls=self.live_pulls,
            audit=self.audit,
            queries=self.task_queries,
            relay=self.control_relay,
            shards=shard_links(settings, shard_client, self.lease.replica_id),
            recordings=self.recording_cache,
        )
        self._maintenance: asyncio.Task[None] | None = None
        # Fails over the tasks of replicas whose lease lapsed while this one runs (started in create()).
        self._fail_over: asyncio.Task[None] | None = None
        self.jobs = JobManager(
            job_settings(settings),
            JobStore(db),
            IdempotencyStore(db),
            self.catalog,
            self.tasks,
            events,
            self.gallery,
            self.identities,
            analytics=self.analytics,
            media=settings.media,
            probe_video=probe_video,
            render_annotated=render_annotated,
            lease=self.lease,  # owns the jobs it claims; takes back those of replicas whose lease lapsed
            audit=self.audit,
            objects=self.object_store,  # s3:// job sources
        )
        self.warmed_up = False
        # StreamFrames counters (open streams, frames dropped by back-pressure), shown by health.
        self.live = LiveStats()
        # Detect (one image) and StreamFrames (a session per stream), over the models.
        self.detect = Detect(models, decode_encoded, decode_raw, crop_people)
        self.live_streams = LiveStreams(
            self.catalog,
            functools.partial(
                LiveSession,
                models=models,
                tracking=functools.partial(tracking_setup, settings),
                stats=self.live,
                max_image_pixels=settings.max_image_pixels,
                max_in_flight=settings.stream_max_in_flight,
            ),
        )
        self.camera_ops = CameraOperations(
            CameraOpsSettings(settings.source_connect_timeout_s, settings.detection_threshold),
            self.catalog,
            models,
            self.live_pulls,
            probe_source,
        )
        self.camera_health = CameraHealthMonitor(
            camera_health_settings(settings), CameraHealthStore(db), self.catalog, probe_source
        )
        # Event sinks (webhooks, MQTT): configured through SinkService, fed by the outbox
        # triggers (migration 0015), delivered by the dispatcher (started by create()).
        self.sink_store, sink_policy = SinkStore(db), sink_policy_for(settings)
        self.sinks = SinkService(self.sink_store, self.catalog, sink_policy, audit=self.audit)
        self.sink_stats = SinkStats()
        self.sink_dispatcher = SinkDispatcher(
            self.sink_store,
            build_deliverers(
                sink_policy, timeout_s=settings.sink_timeout_s, max_connections=settings.sink_max_connections
            ),
            DispatchSettings(
                poll_interval_s=settings.sink_poll_interval_s,
                retry_initial_s=settings.sink_retry_initial_s,
                retry_max_s=settings.sink_retry_max_s,
                timeout_s=settings.sink_timeout_s,
                max_pending=settings.sink_max_pending,
                retention_days=settings.sink_retention_days,
            ),
            owner=self.lease.replica_id,
            notices=SinkNotices(settings.postgres_dsn),
            stats=self.sink_stats,
        )
        # Each named after the component it checks (the name a probe that hangs is reported under).
        self._health = HealthChecker(
            {
                "triton": self._probe_triton,
                "postgres": self._probe_postgres,
                "redis": self._probe_redis,
                "homography_cache": self._probe_catalog,
                "live_streams": self._probe_live,
                "watch_streams": self._probe_watches,
                "history": self._probe_history,
                "sinks": self._probe_sinks,
            }
        )
        # What GetHealth and grpc.health.v1 answer from: refreshed in the background (create() starts it).
        self.health_monitor = HealthMonitor(
            self._health,
            self.supervised,
            interval_s=settings.health_probe_interval_s,
            supervised_version=lambda: _file_version(supervision_path(settings.data_dir)),
        )

    @classmethod
    async def create(cls, settings: Settings) -> InferenceApp:
        """Connect to PostgreSQL (migrating it), Redis and Triton; recover tasks; warm up."""
        settings.media_root.mkdir(parents=True, exist_ok=True)
        secrets = SecretBox.for_data_dir(settings.secret_keys, settings.data_dir)
        db = await Database.connect(settings.postgres_dsn, timeout_s=settings.postgres_timeout_s, secrets=secrets)
        events = RedisEventLog.from_url(settings.redis_url, settings.event_retention, settings.redis_max_connections)
        await events.ping()
        # One endpoint or several (SPOTON_TRITON_GRPC_URL), balanced per request.
        models = TritonPool(
            settings.triton_grpc_urls,
            settings.detector_model,
            settings.reid_model,
            shared_memory=settings.triton_shared_memory,
        )
        app = cls(settings, db, events, models)
        await bootstrap_admin(app.auth, settings)
        await app.writer.start()
        app.identities.start()
        await app.lease.start()
        app.history.start()
        app._maintenance = asyncio.create_task(app._maintain_history(), name="history-maintenance")
        await app.catalog.load()
        app.catalog_sync.start(app.catalog.reload)
        await app.sink_store.reseal()  # sink secrets under an older key, as camera passwords are
        if settings.sinks_path:
            await apply_sinks_path(Path(settings.sinks_path), app.sinks)
        app.sink_dispatcher.start()
        await app.tasks.recover()
        app.control_relay.start(app.tasks.control_here)
        app.shard_worker.start()
        app._fail_over = asyncio.create_task(app.tasks.fail_over_forever(), name="task-fail-over")
        await app.jobs.recover()
        app.camera_health.start()
        app.health_monitor.start()
        return app

    def recording_figures(self) -> RecordingFigures:
        """The recording cache's and object store's figures, for /metrics."""
        cache, stats = self.recording_cache, self.object_store.stats
        return RecordingFigures(
            cache.used_bytes, cache.max_bytes, cache.waiting, stats.bytes_received, stats.body_requests, stats.retries
        )

    async def warm_up(self) -> None:
        """One call to each model, so the first real frame does not pay for lazy init."""
        frame = np.zeros((360, 640, 3), np.uint8)
        await self.models.detect(frame, self.settings.detection_threshold)
        await self.models.embed(np.zeros((2, CROP_HEIGHT, CROP_WIDTH, 3), np.uint8))
        self.warmed_up = True
        log.info("models warmed up")
        self.jobs.start()  # queued jobs (those a restart left too) run once the models are ready

    async def close(self) -> None:
        await self.health_monitor.close()  # the prober and any probe still hanging
        await self.jobs.close()  # first: running jobs stay RUNNING, to be run again after a restart
        await self.control_relay.close()  # forwarded controls wait out their timeout, then Unavailable
        if self._fail_over is not None:
            self._fail_over.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fail_over
        await self.tasks.shutdown()
        await self.shard_worker.close()  # other replicas' shards here: their owners hear this one stopped
        await self.camera_health.close()
        await self.sink_dispatcher.close()  # deliveries in flight stay pending, sent after a restart
        await self.catalog_sync.close()
        await self.outbox.close()
        await self.lease.close()
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        await self.writer.close()
        await self.identities.close()
        await self.history.close()
        await self.gallery.close()
        await self.object_store.close()
        await self.models.close()
        await self.events.close()
        await self.db.close()

    async def health(self) -> HealthReport:
        """Every dependency probed now (bounded per probe); a caller that can wait for the truth."""
        return await self._health.check(warmed_up=self.warmed_up, supervised=self.supervised())

    async def latest_health(self) -> HealthReport:
        """The background prober's newest findings (at most one interval plus the probe bound
        old): what GetHealth and grpc.health.v1 answer, without probing anything."""
        return await self.health_monitor.latest(warmed_up=self.warmed_up)

    def supervised(self) -> list[SupervisedComponent]:
        """Restarts and states from the embedded stack running this service; none otherwise."""
        return read_supervision(supervision_path(self.settings.data_dir))

    async def _probe_triton(self) -> list[ComponentHealth]:
        # Each endpoint probed (a ready one rejoins the pool at once); one endpoint reads as before.
        return triton_components(await self.models.readiness())

    async def _probe_postgres(self) -> list[ComponentHealth]:
        # Tracking goes on without PostgreSQL (track points are held, task states retried):
        # degraded, not failed, with what is held and what to do.
        w, c = self.writer, self.writer.counters
        held = f"{w.buffered} track points in memory and {w.journaled} in the journal {w.journal_path}"
        try:
            await self.db.ping()
        except Exception as exc:
            return [
                ComponentHealth(
                    "postgres",
                    DEGRADED,
                    f"unreachable at {_where(self.settings.postgres_dsn)} ({type(exc).__name__}: {exc}); "
                    f"tracking goes on, {held} are written once it is back. Start PostgreSQL, or point "
                    "SPOTON_POSTGRES_DSN at it",
                )
            ]
        counts = (
            f"track points written {c.written} (replayed {c.replayed}), spilled {c.spilled}, "
            f"duplicates skipped {c.duplicates_skipped}, lost {c.lost}"
        )
        if c.lost:
            detail = (
                f"{c.lost} track points were lost (the log says why: memory and journal full during an "
                "outage, memory full while a write hung, rows PostgreSQL rejected, or a torn journal record "
                "left by a crash); for longer outages raise SPOTON_WRITER_BUFFER_ROWS "
                f"and SPOTON_WRITER_JOURNAL_MAX_BYTES; {counts}"
            )
            return [ComponentHealth("postgres", DEGRADED, detail)]
        if not w.available or w.journaled:
            return [ComponentHealth("postgres", DEGRADED, f"catching up on writes: {held}; {counts}")]
        return [ComponentHealth("postgres", HEALTHY, counts)]

    async def _probe_redis(self) -> list[ComponentHealth]:
        outbox = self.outbox
        try:
            async with asyncio.timeout(REDIS_PING_TIMEOUT_S):
                await self.events.ping()
        except UNREACHABLE as exc:
            detail = (
                f"unreachable at {mask_text(self.settings.redis_url)} ({type(exc).__name__}: {exc}); tracking goes on, "
                f"{outbox.describe()}; live events resume once Redis is back: start it, or fix SPOTON_REDIS_URL"
            )
            return [ComponentHealth("redis", DEGRADED, detail)]
        if outbox.holding:
            return [ComponentHealth("redis", DEGRADED, f"reachable again, publishing: {outbox.describe()}")]
        return [ComponentHealth("redis", HEALTHY, f"replica {self.lease.replica_id}: {outbox.describe()}")]

    async def _probe_catalog(self) -> list[ComponentHealth]:
        n = len(self.catalog.list())
        status = HEALTHY if self.catalog.loaded else STARTING
        return [ComponentHealth("homography_cache", status, f"{n} environments cached")]

    async def _probe_watches(self) -> list[ComponentHealth]:
        # Open WatchTask streams (SSE clients included); one that outlives its client is a leak.
        return [ComponentHealth("watch_streams", HEALTHY, f"{self.tasks.open_watches} open")]

    async def _probe_history(self) -> list[ComponentHealth]:
        c = self.history.counters
        status = HEALTHY if c.events_dropped == 0 else DEGRADED
        return [ComponentHealth("history", status, c.describe())]

    async def _probe_sinks(self) -> list[ComponentHealth]:
        # A receiver that is down or refusing is its own fault, not this service's: reported here
        # (and per sink by SinkService), never a reason to call the service unhealthy.
        return [ComponentHealth("sinks", HEALTHY, self.sink_dispatcher.describe())]

    async def _maintain_history(self) -> None:
        """Track-point partitions ahead and retention: at start-up, then periodically."""
        while True:
            try:
                async with self.db.pool.acquire() as conn:
                    await maintain(
                        conn,
                        retention_days=self.settings.history_retention_days,
                        compress_after_days=self.settings.history_compress_after_days,
                    )
            except Exception as exc:  # the default partition takes inserts meanwhile
                log.warning("history maintenance failed, retrying later: %s", exc)
            await asyncio.sleep(HISTORY_MAINTENANCE_INTERVAL_S)

    async def _probe_live(self) -> list[ComponentHealth]:
        # Drops are back-pressure working as designed, not a fault: reported, still healthy.
        return [ComponentHealth("live_streams", HEALTHY, self.live.describe())]


def source_policy_for(settings: Settings) -> SourcePolicy:
    """The policy of SPOTON_SOURCE_ALLOWED_HOSTS, with every port the service's settings name."""

    def split(url: str) -> tuple[str, int]:
        parts = urllib.parse.urlsplit(url if "://" in url else "//" + url)
        return parts.hostname or "", parts.port or 0

    pg_host, pg_port = split(settings.postgres_dsn)
    redis_host, redis_port = split(settings.redis_url)
    triton_grpc = [("Triton gRPC", *split(url)) for url in settings.triton_grpc_urls]
    own = [
        ("gRPC API", settings.grpc_host, settings.grpc_port),
        ("REST facade", settings.facade_host, settings.facade_port),
        ("metrics", settings.grpc_host, settings.metrics_port),
        ("PostgreSQL", pg_host, pg_port or 5432),
        ("Redis", redis_host, redis_port or 6379),
        *triton_grpc,
        ("Triton HTTP", *split(settings.triton_http_url)),
    ]
    return SourcePolicy.build(settings.source_allowed_hosts, own)


def sink_policy_for(settings: Settings) -> SinkPolicy:
    """The policy of SPOTON_SINK_ALLOWED_HOSTS, refusing the service's own ports too."""
    return SinkPolicy.build(settings.sink_allowed_hosts, source_policy_for(settings))


def job_settings(settings: Settings) -> JobSettings:
    """The job queue's settings (SPOTON_JOB_*, uploads, idempotency keys) and places."""
    return JobSettings(
        jobs_dir=settings.jobs_dir,
        media_root=settings.media_root,
        job_concurrency=settings.job_concurrency,
        job_max_attempts=settings.job_max_attempts,
        job_max_upload_bytes=settings.job_max_upload_bytes,
        max_concurrent_uploads=settings.max_concurrent_uploads,
        upload_disk_reserve_bytes=settings.upload_disk_reserve_bytes,
        rate_limit_uploads_per_min=settings.rate_limit_uploads_per_min,
        idempotency_key_ttl_s=settings.idempotency_key_ttl_s,
    )


def camera_health_settings(settings: Settings) -> HealthCheckSettings:
    """The camera health monitor's settings (SPOTON_CAMERA_HEALTH_*, SPOTON_SOURCE_CONNECT_TIMEOUT_S)."""
    return HealthCheckSettings(
        interval_s=settings.camera_health_interval_s,
        connect_timeout_s=settings.source_connect_timeout_s,
        concurrency=settings.camera_health_concurrency,
        retention_days=settings.camera_health_retention_days,
    )


def _file_version(path: Path) -> tuple[int, int, int] | None:
    """What changes whenever ``path`` is replaced or written (one ``stat``); None while it is missing."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _where(dsn: str) -> str:
    """host:port/database of a DSN, without credentials."""
    url = urllib.parse.urlsplit(dsn)
    return f"{url.hostname}:{url.port or 5432}{url.path}"


async def wait_for_triton(models: TritonPool, timeout_s: float) -> None:
    """Triton may still be loading models when the service starts; wait, then fail clearly."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        ready = await models.ready()
        if all(ready.values()):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"Triton not ready after {timeout_s:.0f}s (readiness: {ready})")
        await asyncio.sleep(0.5)
