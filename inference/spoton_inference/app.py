"""The composition root: builds the core from settings and owns its lifecycle.

Nothing here knows about gRPC; ``grpc_api`` wraps an :class:`InferenceApp`.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse

import numpy as np

from spoton_inference.core.catalog import Catalog
from spoton_inference.core.health import DEGRADED, FAILED, HEALTHY, STARTING, ComponentHealth, HealthReport, check
from spoton_inference.core.tasks import TaskManager
from spoton_inference.pipeline.live import LiveStats
from spoton_inference.pipeline.triton_models import CROP_HEIGHT, CROP_WIDTH, TritonModels
from spoton_inference.settings import Settings
from spoton_inference.storage.embedding_store import EmbeddingStore
from spoton_inference.storage.gallery import RedisGallery
from spoton_inference.storage.identity_sync import IdentitySync
from spoton_inference.storage.journal import Journal
from spoton_inference.storage.postgres import Database
from spoton_inference.storage.redis_events import RedisEventLog
from spoton_inference.storage.track_writer import JOURNAL_FILE, TrackPointWriter

log = logging.getLogger(__name__)


class InferenceApp:
    def __init__(self, settings: Settings, db: Database, events: RedisEventLog, models: TritonModels) -> None:
        self.settings = settings
        self.db = db
        self.events = events
        self.models = models
        # Deleting what an unfinished task uses is refused; tasks are built next, hence the lambda.
        self.catalog = Catalog(db, in_use=lambda environment_id: self.tasks.unfinished(environment_id))
        self.writer = TrackPointWriter(
            db.write_track_point_batch,
            Journal(settings.data_dir / JOURNAL_FILE, settings.writer_journal_max_bytes),
            batch_size=settings.writer_batch_size,
            buffer_rows=settings.writer_buffer_rows,
        )
        self.gallery = RedisGallery.from_url(
            settings.redis_url, max_size=settings.gallery_max_size, max_age_s=settings.gallery_max_age_s
        )
        self.identities = IdentitySync(self.gallery, EmbeddingStore(db))
        self.tasks = TaskManager(settings, db, events, self.catalog, models, self.writer, self.identities)
        self.warmed_up = False
        # StreamFrames counters (open streams, frames dropped by back-pressure), shown by health.
        self.live = LiveStats()

    @classmethod
    async def create(cls, settings: Settings) -> InferenceApp:
        """Connect to PostgreSQL (migrating it), Redis and Triton; recover tasks; warm up."""
        settings.media_root.mkdir(parents=True, exist_ok=True)
        db = await Database.connect(settings.postgres_dsn)
        events = RedisEventLog.from_url(settings.redis_url, settings.event_retention)
        await events.ping()
        models = TritonModels(settings.triton_grpc_url, settings.detector_model, settings.reid_model)
        app = cls(settings, db, events, models)
        await app.writer.start()
        app.identities.start()
        await app.catalog.load()
        await app.tasks.recover()
        return app

    async def warm_up(self) -> None:
        """One call to each model, so the first real frame does not pay for lazy init."""
        frame = np.zeros((360, 640, 3), np.uint8)
        await self.models.detect(frame, self.settings.detection_threshold)
        await self.models.embed(np.zeros((2, CROP_HEIGHT, CROP_WIDTH, 3), np.uint8))
        self.warmed_up = True
        log.info("models warmed up")

    async def close(self) -> None:
        await self.tasks.shutdown()
        await self.writer.close()
        await self.identities.close()
        await self.gallery.close()
        await self.models.close()
        await self.events.close()
        await self.db.close()

    async def health(self) -> HealthReport:
        return await check(
            [
                self._probe_triton,
                self._probe_postgres,
                self._probe_redis,
                self._probe_catalog,
                self._probe_live,
                self._probe_watches,
            ],
            warmed_up=self.warmed_up,
        )

    async def _probe_triton(self) -> list[ComponentHealth]:
        ready = await self.models.ready()
        out = [ComponentHealth("triton", HEALTHY if ready.pop("server") else FAILED, self.settings.triton_grpc_url)]
        out += [ComponentHealth(f"model:{name}", HEALTHY if ok else FAILED) for name, ok in ready.items()]
        return out

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
                "outage, or rows PostgreSQL rejected); for longer outages raise SPOTON_WRITER_BUFFER_ROWS "
                f"and SPOTON_WRITER_JOURNAL_MAX_BYTES; {counts}"
            )
            return [ComponentHealth("postgres", DEGRADED, detail)]
        if not w.available or w.journaled:
            return [ComponentHealth("postgres", DEGRADED, f"catching up on writes: {held}; {counts}")]
        return [ComponentHealth("postgres", HEALTHY, counts)]

    async def _probe_redis(self) -> list[ComponentHealth]:
        await self.events.ping()
        return [ComponentHealth("redis", HEALTHY)]

    async def _probe_catalog(self) -> list[ComponentHealth]:
        n = len(self.catalog.list())
        status = HEALTHY if self.catalog.loaded else STARTING
        return [ComponentHealth("homography_cache", status, f"{n} environments cached")]

    async def _probe_watches(self) -> list[ComponentHealth]:
        # Open WatchTask streams (SSE clients included); one that outlives its client is a leak.
        return [ComponentHealth("watch_streams", HEALTHY, f"{self.tasks.open_watches} open")]

    async def _probe_live(self) -> list[ComponentHealth]:
        # Drops are back-pressure working as designed, not a fault: reported, still healthy.
        return [ComponentHealth("live_streams", HEALTHY, self.live.describe())]


def _where(dsn: str) -> str:
    """host:port/database of a DSN, without credentials."""
    url = urllib.parse.urlsplit(dsn)
    return f"{url.hostname}:{url.port or 5432}{url.path}"


async def wait_for_triton(models: TritonModels, timeout_s: float) -> None:
    """Triton may still be loading models when the service starts; wait, then fail clearly."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        ready = await models.ready()
        if all(ready.values()):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"Triton not ready after {timeout_s:.0f}s (readiness: {ready})")
        await asyncio.sleep(0.5)
