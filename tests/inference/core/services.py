"""The task and job services over a real PostgreSQL, for tests of what they decide before a
task runs (scoping, rate limits): nothing here reaches Redis or Triton, which are left
unconnected."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from spoton_inference.core.analytics import Analytics
from spoton_inference.core.catalog import Catalog
from spoton_inference.core.jobs import JobManager
from spoton_inference.core.tasks import TaskManager
from spoton_inference.pipeline.triton_models import TritonModels
from spoton_inference.settings import Settings
from spoton_inference.storage.analytics_store import AnalyticsStore
from spoton_inference.storage.event_outbox import EventOutbox
from spoton_inference.storage.journal import Journal
from spoton_inference.storage.postgres import Database
from spoton_inference.storage.redis_events import RedisEventLog
from spoton_inference.storage.replicas import ReplicaLease
from spoton_inference.storage.track_writer import TrackPointWriter

UNCONNECTED = "redis://127.0.0.1:1/0"


@dataclasses.dataclass
class Services:
    catalog: Catalog
    tasks: TaskManager
    jobs: JobManager
    analytics: Analytics


def services(db: Database, data_dir: Path, **overrides: Any) -> Services:
    settings = Settings(data_dir=data_dir, media_root=data_dir / "media", **overrides)
    catalog = Catalog(db)
    events = RedisEventLog.from_url(UNCONNECTED, settings.event_retention, 2)
    writer = TrackPointWriter(db.write_track_point_batch, Journal(data_dir / "journal", 1024**2))
    tasks = TaskManager(
        settings,
        db,
        events,
        catalog,
        TritonModels("127.0.0.1:1", settings.detector_model, settings.reid_model),
        writer,
        outbox=EventOutbox(events, 10),
        lease=ReplicaLease(events.client, "test"),
    )
    analytics = Analytics(AnalyticsStore(db), catalog, tasks.get)
    jobs = JobManager(settings, db, catalog, tasks, events, analytics=analytics)
    return Services(catalog, tasks, jobs, analytics)
