"""The grpc.aio server: spoton.v1 services, grpc.health.v1 and reflection.

It serves servicers built elsewhere: the composition root (``grpc_server.py``) builds them
over the services and hands them in, with the interceptors and the address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence

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
from spoton_inference.grpc_api.analytics import AnalyticsServicer
from spoton_inference.grpc_api.auth_service import AuthServicer
from spoton_inference.grpc_api.cameras import CameraRegistryServicer
from spoton_inference.grpc_api.catalog import CatalogServicer
from spoton_inference.grpc_api.inference import InferenceServicer
from spoton_inference.grpc_api.jobs import JobServicer
from spoton_inference.grpc_api.reflection import add_reflection
from spoton_inference.grpc_api.sinks import SinkServicer
from spoton_inference.grpc_api.system import SystemServicer
from spoton_inference.grpc_api.tasks import TaskServicer
from spoton_inference.services.health import STARTING, HealthReport

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


@dataclasses.dataclass(frozen=True, slots=True)
class Servicers:
    """One servicer per spoton.v1 service, built over the services by the composition root."""

    catalog: CatalogServicer
    tasks: TaskServicer
    inference: InferenceServicer
    system: SystemServicer
    analytics: AnalyticsServicer
    jobs: JobServicer
    cameras: CameraRegistryServicer
    auth: AuthServicer
    sinks: SinkServicer


def build_server(
    servicers: Servicers,
    interceptors: Sequence[grpc.aio.ServerInterceptor],
    *,
    max_message_bytes: int,
    address: str,
) -> tuple[grpc.aio.Server, HealthServicer]:
    """A server on ``address`` (host:port) with every servicer, grpc.health.v1 and reflection;
    every call goes through ``interceptors`` in order."""
    server = grpc.aio.server(
        interceptors=list(interceptors),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
    )
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicers.catalog, server)
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(servicers.tasks, server)
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(servicers.inference, server)
    system_pb2_grpc.add_SystemServiceServicer_to_server(servicers.system, server)
    analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(servicers.analytics, server)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(servicers.jobs, server)
    cameras_pb2_grpc.add_CameraRegistryServiceServicer_to_server(servicers.cameras, server)
    auth_pb2_grpc.add_AuthServiceServicer_to_server(servicers.auth, server)
    sinks_pb2_grpc.add_SinkServiceServicer_to_server(servicers.sinks, server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    add_reflection(server, [*SPOTON_SERVICES, HEALTH_SERVICE])
    server.add_insecure_port(address)
    return server, health


async def publish_health(
    latest_health: Callable[[], Awaitable[HealthReport]], health: HealthServicer, interval_s: float = 1.0
) -> None:
    """Keep grpc.health.v1 in step with the detailed health: SERVING once warmed up. It reads
    the background prober's findings (``latest_health``), as GetHealth does, and never probes itself."""
    while True:
        report = await latest_health()
        status = (
            health_pb2.HealthCheckResponse.NOT_SERVING
            if report.status == STARTING
            else health_pb2.HealthCheckResponse.SERVING
        )
        for name in ("", *SPOTON_SERVICES):
            await health.set(name, status)
        await asyncio.sleep(interval_s)
