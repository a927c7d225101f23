"""``CatalogService``: environments and cameras, translated to and from the catalogue (services/catalog.py),
with connection tests and snapshots (services/camera_ops.py) and camera health (services/camera_health.py)."""

from __future__ import annotations

from spoton.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
)
from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.grpc_api import convert
from spoton_inference.grpc_api.errors import unary
from spoton_inference.services.camera_health import CameraHealthMonitor
from spoton_inference.services.camera_listing import list_cameras
from spoton_inference.services.camera_ops import CameraOperations
from spoton_inference.services.catalog import Catalog


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, catalog: Catalog, camera_ops: CameraOperations, camera_health: CameraHealthMonitor) -> None:
        self.catalog = catalog
        self.camera_ops = camera_ops
        self.camera_health = camera_health

    @unary
    async def RegisterEnvironmentFromDirectory(self, request, context):
        env = await self.catalog.register_directory(request.path)
        return catalog_pb2.RegisterEnvironmentFromDirectoryResponse(environment=convert.environment(env))

    @unary
    async def ListEnvironments(self, request, context):
        origin = convert.PROTO_TO_ORIGIN.get(request.origin)  # None (UNSPECIFIED): every origin
        if origin is None and request.origin:
            raise InvalidArgument(f"origin {request.origin} is unknown: ENVIRONMENT_ORIGIN_SITE, _JOB or unset for all")
        return catalog_pb2.ListEnvironmentsResponse(
            environments=[convert.environment(e) for e in self.catalog.list(origin)]
        )

    @unary
    async def GetEnvironment(self, request, context):
        return convert.environment(self.catalog.get(request.environment_id))

    @unary
    async def CreateEnvironment(self, request, context):
        env = await self.catalog.create_environment(convert.environment_spec(request.environment))
        return convert.environment(env)

    @unary
    async def UpdateEnvironment(self, request, context):
        patch = convert.environment_patch(request)
        return convert.environment(await self.catalog.update_environment(request.environment_id, patch))

    @unary
    async def DeleteEnvironment(self, request, context):
        await self.catalog.delete_environment(request.environment_id)
        return catalog_pb2.DeleteEnvironmentResponse()

    @unary
    async def ListCameras(self, request, context):
        enabled = request.enabled if request.HasField("enabled") else None
        cameras = list_cameras(self.catalog, request.environment_id, request.group_id, enabled)
        return catalog_pb2.ListCamerasResponse(cameras=[convert.camera(c) for c in cameras])

    @unary
    async def GetCamera(self, request, context):
        return convert.camera(self.catalog.camera(request.environment_id, request.camera_id))

    @unary
    async def CreateCamera(self, request, context):
        spec = convert.camera_spec(request.camera)
        return convert.camera(await self.catalog.create_camera(request.environment_id, spec))

    @unary
    async def UpdateCamera(self, request, context):
        patch = convert.camera_patch(request)
        return convert.camera(await self.catalog.update_camera(request.environment_id, request.camera_id, patch))

    @unary
    async def DeleteCamera(self, request, context):
        await self.catalog.delete_camera(request.environment_id, request.camera_id)
        return catalog_pb2.DeleteCameraResponse()

    @unary
    async def TestCameraConnection(self, request, context):
        ops = self.camera_ops
        if request.source_url:
            source = CameraSource.from_url(request.source_url, request.username, request.password)
        elif request.environment_id and request.camera_id:
            source = ops.live_source(request.environment_id, request.camera_id)
        else:
            raise InvalidArgument("give environment_id and camera_id of a registered camera, or a source_url to try")
        return convert.connection_test(await ops.test_source(source), source.masked_url)

    @unary
    async def GetCameraSnapshot(self, request, context):
        snap = await self.camera_ops.snapshot(
            request.environment_id, request.camera_id, draw_detections=request.draw_detections
        )
        return catalog_pb2.CameraSnapshot(
            jpeg=snap.jpeg,
            width=snap.width,
            height=snap.height,
            captured_at=convert.timestamp(snap.captured_at),
            detections=snap.detections,
        )

    @unary
    async def ListCameraHealth(self, request, context):
        if request.limit < 0:
            raise InvalidArgument("limit must not be negative")
        report = await self.camera_health.report(request.environment_id, request.camera_id, request.limit)
        return convert.camera_health(report)
