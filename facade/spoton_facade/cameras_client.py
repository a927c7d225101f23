"""Camera operations of ``spoton.v1.CatalogService`` as the facade calls them, with deadlines."""

from __future__ import annotations

import grpc

from spoton.v1 import catalog_pb2, catalog_pb2_grpc
from spoton_facade.client import UNARY_TIMEOUT_S, Metadata

# A connection test or snapshot opens the camera (SPOTON_SOURCE_CONNECT_TIMEOUT_S on the service
# side) and a snapshot may run the detector: more than a lookup, still bounded.
CAMERA_PROBE_TIMEOUT_S = 60.0


class CameraClient:
    def __init__(self, channel: grpc.aio.Channel, metadata: Metadata = ()) -> None:
        self._metadata = tuple(metadata)
        self._catalog = catalog_pb2_grpc.CatalogServiceStub(channel)

    async def test_connection(self, environment_id: str, camera_id: str) -> catalog_pb2.TestCameraConnectionResponse:
        """CatalogService.TestCameraConnection for a registered camera."""
        return await self._catalog.TestCameraConnection(
            catalog_pb2.TestCameraConnectionRequest(environment_id=environment_id, camera_id=camera_id),
            timeout=CAMERA_PROBE_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def snapshot(self, environment_id: str, camera_id: str, detections: bool) -> catalog_pb2.CameraSnapshot:
        """CatalogService.GetCameraSnapshot."""
        return await self._catalog.GetCameraSnapshot(
            catalog_pb2.GetCameraSnapshotRequest(
                environment_id=environment_id, camera_id=camera_id, draw_detections=detections
            ),
            timeout=CAMERA_PROBE_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def health(self, environment_id: str, camera_id: str, limit: int) -> catalog_pb2.ListCameraHealthResponse:
        """CatalogService.ListCameraHealth."""
        return await self._catalog.ListCameraHealth(
            catalog_pb2.ListCameraHealthRequest(environment_id=environment_id, camera_id=camera_id, limit=limit),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )
