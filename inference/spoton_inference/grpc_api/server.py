"""The grpc.aio server: spoton.v1 services, grpc.health.v1 and reflection."""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from spoton.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    cameras_pb2,
    cameras_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    sinks_pb2,
    sinks_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)
from spoton_inference.app import InferenceApp
from spoton_inference.core.health import STARTING
from spoton_inference.embedded.endpoints import host_port
from spoton_inference.grpc_api.analytics import AnalyticsServicer
from spoton_inference.grpc_api.auth import AuthInterceptor
from spoton_inference.grpc_api.auth_service import AuthServicer
from spoton_inference.grpc_api.cameras import CameraRegistryServicer
from spoton_inference.grpc_api.catalog import CatalogServicer
from spoton_inference.grpc_api.guard import RequestGuard
from spoton_inference.grpc_api.inference import InferenceServicer
from spoton_inference.grpc_api.jobs import JobServicer
from spoton_inference.grpc_api.reflection import add_reflection
from spoton_inference.grpc_api.sinks import SinkServicer
from spoton_inference.grpc_api.system import SystemServicer
from spoton_inference.grpc_api.tasks import TaskServicer

log = logging.getLogger(__name__)

SPOTON_SERVICES = tuple(
    f.DESCRIPTOR.services_by_name[name].full_name
    for f, name in (
        (catalog_pb2, "CatalogService"),
        (tasks_pb2, "TaskService"),
        (inference_pb2, "InferenceService"),
        (system_pb2, "SystemService"),
        (analytics_pb2, "AnalyticsService"),
        (jobs_pb2, "JobService"),
        (cameras_pb2, "CameraRegistryService"),
        (auth_pb2, "AuthService"),
        (sinks_pb2, "SinkService"),
    )
)
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


def build_server(app: InferenceApp) -> tuple[grpc.aio.Server, HealthServicer]:
    limit = app.settings.grpc_max_message_bytes
    server = grpc.aio.server(
        # Every call, of every service below, through authentication first (grpc_api/auth.py),
        # so a caller without a credential learns nothing of the contract, then the one guard
        # (grpc_api/guard.py).
        interceptors=[AuthInterceptor(app.auth, app.audit), RequestGuard(app.settings.grpc_unary_timeout_s)],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ],
    )
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(app), server)
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(TaskServicer(app), server)
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(InferenceServicer(app), server)
    system_pb2_grpc.add_SystemServiceServicer_to_server(SystemServicer(app), server)
    analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(AnalyticsServicer(app), server)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(app), server)
    cameras_pb2_grpc.add_CameraRegistryServiceServicer_to_server(CameraRegistryServicer(app), server)
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(app), server)
    sinks_pb2_grpc.add_SinkServiceServicer_to_server(SinkServicer(app), server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    add_reflection(server, [*SPOTON_SERVICES, HEALTH_SERVICE])
    # SPOTON_BIND_HOST (or SPOTON_GRPC_HOST): loopback by default, 0.0.0.0 for every interface.
    server.add_insecure_port(host_port(app.settings.grpc_host, app.settings.grpc_port))
    return server, health


async def publish_health(app: InferenceApp, health: HealthServicer, interval_s: float = 1.0) -> None:
    """Keep grpc.health.v1 in step with the detailed health: SERVING once warmed up. It reads
    the background prober's findings, as GetHealth does, and never probes itself."""
    while True:
        report = await app.latest_health()
        status = (
            health_pb2.HealthCheckResponse.NOT_SERVING
            if report.status == STARTING
            else health_pb2.HealthCheckResponse.SERVING
        )
        for name in ("", *SPOTON_SERVICES):
            await health.set(name, status)
        await asyncio.sleep(interval_s)
