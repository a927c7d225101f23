"""REST bodies of the camera operations: connection test, health (CatalogService)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

CameraStatus = Literal["online", "degraded", "offline", "unknown"]


class ConnectionTest(msgspec.Struct):
    """``spoton.v1.TestCameraConnectionResponse``: a source that is down is ``ok: false`` with a reason."""

    ok: bool
    # Why not (credentials masked); empty when ok.
    reason: str
    # auth, refused, timeout, not_found, not_video, host_not_found, ended or error; empty when ok.
    error_kind: str
    codec: str
    width: int
    height: int
    fps: float
    time_to_first_frame_ms: float
    # The URL tried, password masked.
    source_url: str


class CameraHealthCheck(msgspec.Struct):
    checked_at: dt.datetime | None
    status: CameraStatus
    latency_ms: float
    fps: float
    width: int
    height: int
    error: str


class CameraHealth(msgspec.Struct):
    """``spoton.v1.ListCameraHealthResponse``: the current status and the checks, newest first."""

    status: CameraStatus
    checks: list[CameraHealthCheck]
