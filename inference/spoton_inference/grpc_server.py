"""The gRPC server wired to an :class:`InferenceApp`: part of the composition root.

``grpc_api`` only translates; this module builds its servicers over the app's services, its
interceptors (authentication first, so a caller without a credential learns nothing of the
contract, then the one guard) and its address, and hands them to ``grpc_api.server``.
"""

from __future__ import annotations

import dataclasses

import grpc
from grpc_health.v1._async import HealthServicer

from spoton_inference.app import InferenceApp
from spoton_inference.domain.environment import Environment
from spoton_inference.domain.network import host_port
from spoton_inference.files import camera_io
from spoton_inference.files.camera_io import FileFormat, ImportResult
from spoton_inference.grpc_api import server as api_server
from spoton_inference.grpc_api.analytics import AnalyticsServicer
from spoton_inference.grpc_api.auth import AuthInterceptor
from spoton_inference.grpc_api.auth_service import AuthServicer
from spoton_inference.grpc_api.cameras import CameraFile, CameraRegistryServicer
from spoton_inference.grpc_api.catalog import CatalogServicer
from spoton_inference.grpc_api.guard import RequestGuard
from spoton_inference.grpc_api.inference import InferenceServicer
from spoton_inference.grpc_api.jobs import JobServicer
from spoton_inference.grpc_api.sinks import SinkServicer
from spoton_inference.grpc_api.system import SystemServicer
from spoton_inference.grpc_api.tasks import TaskServicer
from spoton_inference.services.catalog import Catalog


@dataclasses.dataclass(frozen=True, slots=True)
class CameraFileIO:
    """The camera registry's files port over ``files/camera_io.py``, importing into ``catalog``."""

    catalog: Catalog

    async def import_cameras(
        self, environment_id: str, content: bytes, file_format: str, *, dry_run: bool
    ) -> ImportResult:
        return await camera_io.import_cameras(
            self.catalog, environment_id, content, FileFormat(file_format), dry_run=dry_run
        )

    def export_cameras(self, environment: Environment, file_format: str) -> CameraFile:
        kind = FileFormat(file_format)
        return CameraFile(
            camera_io.export_cameras(environment, kind),
            camera_io.MEDIA_TYPES[kind],
            camera_io.export_filename(environment.environment_id, kind),
        )


def servicers(app: InferenceApp) -> api_server.Servicers:
    """Every spoton.v1 servicer, each over the services it calls."""
    settings = app.settings
    return api_server.Servicers(
        catalog=CatalogServicer(app.catalog, app.camera_ops, app.camera_health),
        tasks=TaskServicer(app.tasks),
        inference=InferenceServicer(
            app.detect,
            app.live_streams,
            max_image_pixels=settings.max_image_pixels,
            detection_threshold=settings.detection_threshold,
        ),
        system=SystemServicer(app.latest_health),
        analytics=AnalyticsServicer(app.analytics),
        jobs=JobServicer(app.jobs),
        cameras=CameraRegistryServicer(app.catalog, CameraFileIO(app.catalog)),
        auth=AuthServicer(app.auth, app.audit),
        sinks=SinkServicer(app.sinks),
    )


def build_server(app: InferenceApp) -> tuple[grpc.aio.Server, HealthServicer]:
    """The server for ``app``, not started; its grpc.health.v1 servicer (see :func:`publish_health`)."""
    settings = app.settings
    return api_server.build_server(
        servicers(app),
        # Every call, of every service, through authentication first (grpc_api/auth.py), then
        # the one guard (grpc_api/guard.py).
        [AuthInterceptor(app.auth, app.audit), RequestGuard(settings.grpc_unary_timeout_s)],
        max_message_bytes=settings.grpc_max_message_bytes,
        # SPOTON_BIND_HOST (or SPOTON_GRPC_HOST): loopback by default, 0.0.0.0 for every interface.
        address=host_port(settings.grpc_host, settings.grpc_port),
    )


async def publish_health(app: InferenceApp, health: HealthServicer, interval_s: float = 1.0) -> None:
    """Keep grpc.health.v1 in step with ``app``'s detailed health (``grpc_api.server.publish_health``)."""
    await api_server.publish_health(app.latest_health, health, interval_s)
