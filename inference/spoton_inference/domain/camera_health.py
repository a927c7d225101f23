"""One stored health check of a live camera (services/camera_health.py judges, storage keeps it)."""

from __future__ import annotations

import dataclasses
import datetime as dt


@dataclasses.dataclass(frozen=True, slots=True)
class HealthCheck:
    environment_id: str
    camera_id: str
    checked_at: dt.datetime
    status: str  # online | offline | degraded
    latency_ms: float | None
    fps: float
    width: int
    height: int
    error: str
