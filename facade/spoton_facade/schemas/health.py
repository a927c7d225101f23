"""``GET /health``: the inference service's component health plus the facade's own."""

from __future__ import annotations

from typing import Literal

import msgspec

HealthStatus = Literal["healthy", "degraded", "starting"]


class ComponentHealth(msgspec.Struct):
    """One dependency's health as the inference service (or the facade) sees it."""

    name: str
    # healthy, degraded, starting or failed
    status: str
    detail: str
    # Restarts by the embedded stack's supervisor, and why it last died ("was killed by SIGKILL").
    restarts: int = 0
    last_exit: str = ""


class HealthReport(msgspec.Struct):
    """``GET /health``: the inference service's view plus the facade's own."""

    status: HealthStatus
    components: list[ComponentHealth]
    facade: Literal["ok"] = "ok"
