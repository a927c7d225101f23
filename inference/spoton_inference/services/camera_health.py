"""Periodic health checks of live cameras, kept in PostgreSQL.

Every ``SPOTON_CAMERA_HEALTH_INTERVAL_S`` each enabled camera with a live source (rtsp/http) is
probed, a few at a time: opened within ``SPOTON_SOURCE_CONNECT_TIMEOUT_S``, then decoded for
:data:`SAMPLE_S` to measure the rate frames arrive at. The result is stored; a camera's
status is its newest check. Checks older than ``SPOTON_CAMERA_HEALTH_RETENTION_DAYS`` are
deleted by the same loop.

Status rules:
- ``online``: frames arrive at 50% or more of the expected rate (the camera's configured fps,
  else what the stream declares);
- ``degraded``: it connects and sends frames, but slower than that;
- ``offline``: it cannot be opened or sends no frame (the error says why, masked).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from typing import Protocol

from spoton_inference.domain.camera_health import HealthCheck
from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.camera_summary import DEGRADED, OFFLINE, ONLINE, UNKNOWN
from spoton_inference.domain.environment import Camera
from spoton_inference.domain.probe_result import ProbeResult
from spoton_inference.services.catalog import Catalog
from spoton_inference.services.source_policy import REFUSED_BY_POLICY, SourceRefused

log = logging.getLogger(__name__)
# Share of the expected frame rate below which a camera is degraded.
MIN_FPS_RATIO = 0.5
# Seconds each check decodes to measure the frame rate.
SAMPLE_S = 1.0
MAX_HISTORY = 1000


def status_of(result: ProbeResult, expected_fps: float) -> tuple[str, str]:
    """The status of one probe, and why it is not online ('' when it is)."""
    if not result.ok:
        return OFFLINE, result.reason
    expected = expected_fps or result.fps
    if expected > 0 and result.measured_fps < MIN_FPS_RATIO * expected:
        share = f"{MIN_FPS_RATIO:.0%} of the expected {expected:g} fps"
        return DEGRADED, f"frames arrive at {result.measured_fps:.1f} fps, under {share}"
    return ONLINE, ""


@dataclasses.dataclass(frozen=True, slots=True)
class HealthCheckSettings:
    """The SPOTON_CAMERA_HEALTH_* settings and the connect timeout (the root builds it from Settings)."""

    interval_s: float = 60.0  # 0: no periodic loop
    connect_timeout_s: float = 10.0
    concurrency: int = 4
    retention_days: int = 7  # 0 or less: kept for good


class HealthRecords(Protocol):
    """Stored checks (storage/camera_health_store.CameraHealthStore)."""

    async def insert(self, check: HealthCheck) -> None: ...
    async def history(self, environment_id: str, camera_id: str, limit: int) -> list[HealthCheck]: ...
    async def prune(self, older_than: dt.datetime) -> int: ...


class SourceProber(Protocol):
    """Opens a live source within ``timeout_s`` and samples its frame rate for ``sample_s``;
    blocking (pipeline/source_probe.probe_source)."""

    def __call__(self, source: CameraSource, timeout_s: float, sample_s: float) -> ProbeResult: ...


@dataclasses.dataclass(frozen=True, slots=True)
class CameraHealthReport:
    status: str  # the newest check's, or unknown before the first
    checks: list[HealthCheck]  # newest first


class CameraHealthMonitor:
    def __init__(
        self, settings: HealthCheckSettings, store: HealthRecords, catalog: Catalog, probe: SourceProber
    ) -> None:
        self._settings = settings
        self._store = store
        self._catalog = catalog
        self._probe = probe
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """The periodic loop, unless SPOTON_CAMERA_HEALTH_INTERVAL_S is 0."""
        if self._settings.interval_s > 0:
            self._task = asyncio.create_task(self._loop(), name="camera-health")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check(self, environment_id: str, camera: Camera) -> HealthCheck:
        """Probe one live camera now and store the result."""
        assert camera.source.is_live
        try:  # a refused source (services/source_policy.py) is never called, only reported
            await asyncio.to_thread(self._catalog.source_policy.check, camera.source)
        except SourceRefused as exc:
            result = ProbeResult(ok=False, reason=exc.errors[0][1], error_kind=REFUSED_BY_POLICY)
        else:
            timeout_s = self._settings.connect_timeout_s
            result = await asyncio.to_thread(self._probe, camera.source, timeout_s, SAMPLE_S)
        status, error = status_of(result, camera.fps)
        row = HealthCheck(
            environment_id,
            camera.camera_id,
            dt.datetime.now(dt.UTC),
            status,
            result.first_frame_ms if result.ok else None,
            result.measured_fps,
            result.width,
            result.height,
            error,
        )
        await self._store.insert(row)
        return row

    async def check_all(self) -> list[HealthCheck]:
        """Every enabled camera with a live source, at most SPOTON_CAMERA_HEALTH_CONCURRENCY at once."""
        limit = asyncio.Semaphore(max(1, self._settings.concurrency))

        async def one(environment_id: str, camera: Camera) -> HealthCheck | None:
            async with limit:
                try:
                    return await self.check(environment_id, camera)
                except Exception as exc:  # the database: the next round tries again
                    log.warning("health check of camera %s/%s not stored: %s", environment_id, camera.camera_id, exc)
                    return None

        live = [
            (env.environment_id, cam)
            for env in self._catalog.list()
            for cam in env.cameras
            if cam.enabled and cam.source.is_live
        ]
        done = await asyncio.gather(*(one(e, c) for e, c in live))
        return [c for c in done if c is not None]

    async def report(self, environment_id: str, camera_id: str, limit: int) -> CameraHealthReport:
        self._catalog.camera(environment_id, camera_id)  # NotFound for an unknown camera
        checks = await self._store.history(environment_id, camera_id, min(max(limit or 50, 1), MAX_HISTORY))
        return CameraHealthReport(checks[0].status if checks else UNKNOWN, checks)

    async def prune(self) -> int:
        days = self._settings.retention_days
        if days <= 0:
            return 0
        return await self._store.prune(dt.datetime.now(dt.UTC) - dt.timedelta(days=days))

    async def _loop(self) -> None:
        while True:
            try:
                checks = await self.check_all()
                await self.prune()
                log.debug("camera health: %d cameras checked", len(checks))
            except Exception as exc:
                log.warning("camera health round failed, retrying next interval: %s", exc)
            await asyncio.sleep(self._settings.interval_s)
