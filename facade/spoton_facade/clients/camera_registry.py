"""``spoton.v1.CameraRegistryService`` as the facade calls it: one method per RPC, with deadlines."""

from __future__ import annotations

import grpc

from spoton.v1 import cameras_pb2, cameras_pb2_grpc
from spoton_facade.clients.inference import UNARY_TIMEOUT_S, Metadata

# An import validates every row (and probes sub-videos of new cameras) before one write.
IMPORT_TIMEOUT_S = 60.0


class CameraRegistryClient:
    """Thin async wrapper over the CameraRegistryService stub; ``metadata`` goes on every call."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Metadata = ()) -> None:
        self._metadata = tuple(metadata)
        self._stub = cameras_pb2_grpc.CameraRegistryServiceStub(channel)

    async def list_groups(self, environment_id: str) -> cameras_pb2.ListCameraGroupsResponse:
        request = cameras_pb2.ListCameraGroupsRequest(environment_id=environment_id)
        return await self._stub.ListCameraGroups(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def get_group(self, environment_id: str, group_id: str) -> cameras_pb2.CameraGroup:
        request = cameras_pb2.GetCameraGroupRequest(environment_id=environment_id, group_id=group_id)
        return await self._stub.GetCameraGroup(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def create_group(self, group: cameras_pb2.CameraGroup) -> cameras_pb2.CameraGroup:
        request = cameras_pb2.CreateCameraGroupRequest(group=group)
        return await self._stub.CreateCameraGroup(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def update_group(self, request: cameras_pb2.UpdateCameraGroupRequest) -> cameras_pb2.CameraGroup:
        return await self._stub.UpdateCameraGroup(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def delete_group(self, environment_id: str, group_id: str) -> None:
        request = cameras_pb2.DeleteCameraGroupRequest(environment_id=environment_id, group_id=group_id)
        await self._stub.DeleteCameraGroup(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def import_cameras(self, request: cameras_pb2.ImportCamerasRequest) -> cameras_pb2.ImportCamerasResponse:
        return await self._stub.ImportCameras(request, timeout=IMPORT_TIMEOUT_S, metadata=self._metadata)

    async def export_cameras(self, environment_id: str, file_format: int) -> cameras_pb2.ExportCamerasResponse:
        request = cameras_pb2.ExportCamerasRequest(environment_id=environment_id, format=file_format)
        return await self._stub.ExportCameras(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def get_summary(self) -> cameras_pb2.CameraSummary:
        request = cameras_pb2.GetCameraSummaryRequest()
        return await self._stub.GetCameraSummary(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)
