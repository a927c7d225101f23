"""The task and job services over a real PostgreSQL, for tests of what they decide before a
task runs (scoping, rate limits): nothing here reaches Redis or Triton, which are left
unconnected."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from spoton_inference.app import job_settings
from spoton_inference.files import environment_dir, heatmap_png
from spoton_inference.files.video_probe import probe_video
from spoton_inference.pipeline.annotate import render_annotated
from spoton_inference.pipeline.triton_models import TritonModels
from spoton_inference.services.analytics import Analytics
from spoton_inference.services.catalog import Catalog
from spoton_inference.services.jobs import JobManager
from spoton_inference.services.task_ports import Lease
from spoton_inference.services.tasks import TaskManager
from spoton_inference.settings import Settings
from spoton_inference.storage.analytics_store import AnalyticsStore
from spoton_inference.storage.camera_health_store import CameraHealthStore
from spoton_inference.storage.catalog_store import CatalogStore
from spoton_inference.storage.environment_store import EnvironmentStore
from spoton_inference.storage.event_outbox import EventOutbox
from spoton_inference.storage.idempotency_store import IdempotencyStore
from spoton_inference.storage.job_store import JobStore
from spoton_inference.storage.journal import Journal
from spoton_inference.storage.postgres import Database
from spoton_inference.storage.redis_events import RedisEventLog
from spoton_inference.storage.replicas import ReplicaLease
from spoton_inference.storage.task_store import TaskStore
from spoton_inference.storage.track_writer import TrackPointWriter
from spoton_inference.task_setup import build_tasks

UNCONNECTED = "redis://127.0.0.1:1/0"


@dataclasses.dataclass
class Services:
    catalog: Catalog
    tasks: TaskManager
    jobs: JobManager
    analytics: Analytics


def services(db: Database, data_dir: Path, lease: Lease | None = None, **overrides: Any) -> Services:
    """``lease``: the replica's (by default one named "test" on the unconnected Redis)."""
    settings = Settings(data_dir=data_dir, media_root=data_dir / "media", **overrides)
    catalog = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir)
    events = RedisEventLog.from_url(UNCONNECTED, settings.event_retention, 2)
    lease = lease or ReplicaLease(events.client, "test")
    writer = TrackPointWriter(TaskStore(db).write_track_point_batch, Journal(data_dir / "journal", 1024**2))
    tasks = build_tasks(
        settings,
        db,
        events,
        catalog,
        TritonModels("127.0.0.1:1", settings.detector_model, settings.reid_model),
        writer,
        outbox=EventOutbox(events, 10),
        lease=lease,
    )
    analytics = Analytics(AnalyticsStore(db), catalog, tasks.get, paint_heatmap=heatmap_png.paint)
    jobs = JobManager(
        job_settings(settings),
        JobStore(db),
        IdempotencyStore(db),
        catalog,
        tasks,
        events,
        analytics=analytics,
        media=settings.media,
        probe_video=probe_video,
        render_annotated=render_annotated,
        lease=lease,
    )
    return Services(catalog, tasks, jobs, analytics)
