"""``GET /health``: the inference service's detailed health, as dashboards poll it."""

from __future__ import annotations

from typing import cast

import grpc
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from spoton_facade.clients.inference import InferenceClient
from spoton_facade.schemas.health import ComponentHealth, HealthReport, HealthStatus
from spoton_facade.settings import FacadeSettings

HEALTH_PATH = "/health"
# Codes that mean "not reachable yet" rather than "reachable but broken".
_NOT_YET = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# The details need a credential; without one, the open grpc.health.v1 answers for the service.
_NEEDS_CREDENTIAL = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


class HealthController(Controller):
    """Health of the inference service and its dependencies, plus the facade itself."""

    path = HEALTH_PATH
    tags = ("system",)

    @get(
        summary="Service health",
        description="200 when healthy or degraded; 503 while starting or when the inference "
        "service cannot be reached (then a component named `inference` says why).",
        responses={503: ResponseSpec(HealthReport, description="Starting or unreachable")},
    )
    async def health(
        self, inference: NamedDependency[InferenceClient], settings: NamedDependency[FacadeSettings]
    ) -> Response[HealthReport]:
        """SystemService.GetHealth, with the facade's view of the connection prepended."""
        target = settings.inference_target
        try:
            try:
                reply = await inference.get_health()
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _NEEDS_CREDENTIAL:
                    raise
                return await _open_health(inference, target)
        except grpc.aio.AioRpcError as exc:
            component = ComponentHealth(
                name="inference",
                status="starting" if exc.code() in _NOT_YET else "failed",
                detail=f"{target}: {exc.code().name}: {exc.details()}",
            )
            return Response(HealthReport(status="starting", components=[component]), status_code=503)
        # Under the embedded stack the service reports its own restarts as "inference": one entry.
        own = next((c for c in reply.components if c.name == "inference"), None)
        restarts, last_exit = (own.restarts, own.last_exit) if own is not None else (0, "")
        components = [ComponentHealth("inference", "healthy", f"{target}: reachable", restarts, last_exit)]
        components += [
            ComponentHealth(c.name, c.status, c.detail, c.restarts, c.last_exit)
            for c in reply.components
            if c.name != "inference"
        ]
        # Anything the service reports beyond the documented values is treated as not ready.
        status = cast(HealthStatus, reply.status if reply.status in ("healthy", "degraded") else "starting")
        report = HealthReport(status=status, components=components)
        return Response(report, status_code=200 if status != "starting" else 503)


async def _open_health(inference: InferenceClient, target: str) -> Response[HealthReport]:
    """The service's overall status from grpc.health.v1 (open, as probes need), for a caller
    without a credential: no components, which only a credential may see."""
    serving = await inference.check_serving()
    detail = f"{target}: reachable; send a credential for the components' health"
    status: HealthStatus = "healthy" if serving else "starting"
    component = ComponentHealth("inference", status, detail)
    return Response(HealthReport(status=status, components=[component]), status_code=200 if serving else 503)
