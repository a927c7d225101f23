"""``CatalogService``: environments and cameras, translated to and from :class:`InferenceApp`'s catalogue."""

from __future__ import annotations

from spoton.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
)
from spoton_inference.app import InferenceApp
from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.grpc_api import convert
from spoton_inference.grpc_api.errors import unary


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, app: InferenceApp) -> None:
        self.app = app

    @unary
    async def RegisterEnvironmentFromDirectory(self, request, context):
        env = await self.app.catalog.register_directory(request.path)
        return catalog_pb2.RegisterEnvironmentFromDirectoryResponse(environment=convert.environment(env))

    @unary
    async def ListEnvironments(self, request, context):
        origin = convert.PROTO_TO_ORIGIN.get(request.origin)  # None (UNSPECIFIED): every origin
        if origin is None and request.origin:
            raise InvalidArgument(f"origin {request.origin} is unknown: ENVIRONMENT_ORIGIN_SITE, _JOB or unset for all")
        return catalog_pb2.ListEnvironmentsResponse(
            environments=[convert.environment(e) for e in self.app.catalog.list(origin)]
        )

    @unary
    async def GetEnvironment(self, request, context):
        return convert.environment(self.app.catalog.get(request.environment_id))

    @unary
    async def CreateEnvironment(self, request, context):
        env = await self.app.catalog.create_environment(convert.environment_spec(request.environment))
        return convert.environment(env)

    @unary
    async def UpdateEnvironment(self, request, context):
        patch = convert.environment_patch(request)
        return convert.environment(await self.app.catalog.update_environment(request.environment_id, patch))

    @unary
    async def DeleteEnvironment(self, request, context):
        await self.app.catalog.delete_environment(request.environment_id)
        return catalog_pb2.DeleteEnvironmentResponse()

    @unary
    async def ListCameras(self, request, context):
        env = self.app.catalog.get(request.environment_id)
        if request.group_id:
            self.app.catalog.group(request.environment_id, request.group_id)  # NOT_FOUND for an unknown group
        cameras = [
            c
            for c in env.cameras
            if (not request.group_id or c.group_id == request.group_id)
            and (not request.HasField("enabled") or c.enabled == request.enabled)
        ]
        return catalog_pb2.ListCamerasResponse(cameras=[convert.camera(c) for c in cameras])

    @unary
    async def GetCamera(self, request, context):
        return convert.camera(self.app.catalog.camera(request.environment_id, request.camera_id))

    @unary
    async def CreateCamera(self, request, context):
        spec = convert.camera_spec(request.camera)
        return convert.camera(await self.app.catalog.create_camera(request.environment_id, spec))

    @unary
    async def UpdateCamera(self, request, context):
        patch = convert.camera_patch(request)
        return convert.camera(await self.app.catalog.update_camera(request.environment_id, request.camera_id, patch))

    @unary
    async def DeleteCamera(self, request, context):
        await self.app.catalog.delete_camera(request.environment_id, request.camera_id)
        return catalog_pb2.DeleteCameraResponse()

    @unary
    async def TestCameraConnection(self, request, context):
        ops = self.app.camera_ops
        if request.source_url:
            source = CameraSource.from_url(request.source_url, request.username, request.password)
        elif request.environment_id and request.camera_id:
            source = ops.live_source(request.environment_id, request.camera_id)
        else:
            raise InvalidArgument("give environment_id and camera_id of a registered camera, or a source_url to try")
        return convert.connection_test(await ops.test_source(source), source.masked_url)

    @unary
    async def GetCameraSnapshot(self, request, context):
        snap = await self.app.camera_ops.snapshot(
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
        report = await self.app.camera_health.report(request.environment_id, request.camera_id, request.limit)
        return convert.camera_health(report)
