"""The inference service's gRPC API as the facade calls it: one method per RPC, with deadlines.

Handlers depend on :class:`InferenceClient`, never on stubs, so any of them can be exercised
against a real service with nothing but a channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from spoton.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)
from spoton_facade.security import credential_of
from spoton_facade.settings import FacadeSettings

if TYPE_CHECKING:
    from litestar import Request

# Unary calls are lookups or enqueues on the service side; anything slower is a fault to report
# (504) rather than to wait out.
UNARY_TIMEOUT_S = 10.0
# Dashboards poll health; a hung service must read as "starting" quickly.
HEALTH_TIMEOUT_S = 2.0
# Registering a directory probes every sub-video on the service side.
REGISTER_TIMEOUT_S = 120.0
# Analytics aggregate history in PostgreSQL; a long range over a busy site takes a while.
ANALYTICS_TIMEOUT_S = 60.0
# A connection test or snapshot opens the camera (SPOTON_SOURCE_CONNECT_TIMEOUT_S on the service
# side) and a snapshot may run the detector: more than a lookup, still bounded.
CAMERA_PROBE_TIMEOUT_S = 60.0

Metadata = Sequence[tuple[str, str]]


def request_metadata(request: Request[Any, Any, Any]) -> Metadata:
    """The gRPC metadata a request's calls carry: the caller's credential (its ``Authorization``
    or ``X-API-Key`` header, or its session cookie's token) as ``authorization: Bearer …``."""
    credential = credential_of(request.headers, request.cookies)
    return credential.metadata() if credential is not None else []


def _channel_options(settings: FacadeSettings) -> list[tuple[str, int]]:
    limit = settings.grpc_max_message_bytes
    return [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]


def open_channel(settings: FacadeSettings) -> grpc.aio.Channel:
    """The one channel the app shares; its message limits match the inference service's."""
    return grpc.aio.insecure_channel(settings.inference_target, options=_channel_options(settings))


def open_upload_channel(settings: FacadeSettings) -> grpc.Channel:
    """A blocking channel for client-streaming uploads.

    A grpc.aio client still streaming when the server refuses the call can report INTERNAL
    ("Internal error from Core") instead of the server's status (grpc#36066); the blocking
    API keeps the server's status, so a refused upload stays a 400, 413 or 415.
    """
    return grpc.insecure_channel(settings.inference_target, options=_channel_options(settings))


class InferenceClient:
    """Thin async wrapper over the stubs; ``metadata`` (e.g. ``authorization``) goes on every call."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Metadata = ()) -> None:
        self._metadata = tuple(metadata)
        self._system = system_pb2_grpc.SystemServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        self._catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        self._analytics = analytics_pb2_grpc.AnalyticsServiceStub(channel)

    async def get_health(self) -> system_pb2.GetHealthResponse:
        """SystemService.GetHealth."""
        return await self._system.GetHealth(
            system_pb2.GetHealthRequest(), timeout=HEALTH_TIMEOUT_S, metadata=self._metadata
        )

    async def check_serving(self) -> bool:
        """grpc.health.v1 Health.Check for the whole server: open, for probes with no credential."""
        reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT_S)
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    async def start_task(
        self,
        environment_id: str,
        camera_ids: Sequence[str],
        idempotency_key: str = "",
        *,
        allow_concurrent: bool = False,
    ) -> tasks_pb2.Task:
        """TaskService.StartTask; returns the new task (or, for a key already used, its task)."""
        request = tasks_pb2.StartTaskRequest(
            environment_id=environment_id,
            camera_ids=camera_ids,
            idempotency_key=idempotency_key,
            allow_concurrent=allow_concurrent,
        )
        response = await self._tasks.StartTask(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)
        return response.task

    async def get_task(self, task_id: str) -> tasks_pb2.Task:
        """TaskService.GetTask."""
        return await self._tasks.GetTask(
            tasks_pb2.GetTaskRequest(task_id=task_id),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def list_tasks(
        self, page_size: int, page_token: str, environment_id: str, state: int
    ) -> tasks_pb2.ListTasksResponse:
        """TaskService.ListTasks; zero values mean "server default" / "no filter"."""
        request = tasks_pb2.ListTasksRequest(
            page_size=page_size, page_token=page_token, environment_id=environment_id, state=state
        )
        return await self._tasks.ListTasks(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def control_task(self, request: tasks_pb2.ControlTaskRequest) -> tasks_pb2.Task:
        """TaskService.ControlTask; returns the task after the action took effect."""
        response = await self._tasks.ControlTask(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)
        return response.task

    def watch_task(
        self, task_id: str, after_sequence: int
    ) -> grpc.aio.UnaryStreamCall[tasks_pb2.WatchTaskRequest, tasks_pb2.TaskEvent]:
        """TaskService.WatchTask, with no deadline: it lives as long as the task or the client.

        The caller owns the returned call and must cancel it when done.
        """
        request = tasks_pb2.WatchTaskRequest(task_id=task_id, after_sequence=after_sequence)
        return self._tasks.WatchTask(request, metadata=self._metadata)

    async def list_task_exports(self, task_id: str) -> tasks_pb2.ListTaskExportsResponse:
        """TaskService.ListTaskExports."""
        return await self._tasks.ListTaskExports(
            tasks_pb2.ListTaskExportsRequest(task_id=task_id),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def list_environments(self, origin: int = 0) -> catalog_pb2.ListEnvironmentsResponse:
        """CatalogService.ListEnvironments; ``origin`` 0 (unspecified) lists every origin."""
        return await self._catalog.ListEnvironments(
            catalog_pb2.ListEnvironmentsRequest(origin=origin), timeout=UNARY_TIMEOUT_S, metadata=self._metadata
        )

    async def get_environment(self, environment_id: str) -> catalog_pb2.Environment:
        """CatalogService.GetEnvironment."""
        return await self._catalog.GetEnvironment(
            catalog_pb2.GetEnvironmentRequest(environment_id=environment_id),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def list_cameras(
        self, environment_id: str, group_id: str = "", enabled: bool | None = None
    ) -> catalog_pb2.ListCamerasResponse:
        """CatalogService.ListCameras; "" and None mean "no filter"."""
        return await self._catalog.ListCameras(
            catalog_pb2.ListCamerasRequest(environment_id=environment_id, group_id=group_id, enabled=enabled),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def register_environment(self, path: str) -> catalog_pb2.Environment:
        """CatalogService.RegisterEnvironmentFromDirectory; probing videos can take a while."""
        response = await self._catalog.RegisterEnvironmentFromDirectory(
            catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=path),
            timeout=REGISTER_TIMEOUT_S,
            metadata=self._metadata,
        )
        return response.environment

    async def create_environment(self, environment: catalog_pb2.Environment) -> catalog_pb2.Environment:
        """CatalogService.CreateEnvironment."""
        return await self._catalog.CreateEnvironment(
            catalog_pb2.CreateEnvironmentRequest(environment=environment),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def update_environment(self, request: catalog_pb2.UpdateEnvironmentRequest) -> catalog_pb2.Environment:
        """CatalogService.UpdateEnvironment."""
        return await self._catalog.UpdateEnvironment(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def delete_environment(self, environment_id: str) -> None:
        """CatalogService.DeleteEnvironment."""
        await self._catalog.DeleteEnvironment(
            catalog_pb2.DeleteEnvironmentRequest(environment_id=environment_id),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def get_camera(self, environment_id: str, camera_id: str) -> catalog_pb2.Camera:
        """CatalogService.GetCamera."""
        return await self._catalog.GetCamera(
            catalog_pb2.GetCameraRequest(environment_id=environment_id, camera_id=camera_id),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def create_camera(self, environment_id: str, camera: catalog_pb2.Camera) -> catalog_pb2.Camera:
        """CatalogService.CreateCamera."""
        return await self._catalog.CreateCamera(
            catalog_pb2.CreateCameraRequest(environment_id=environment_id, camera=camera),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def update_camera(self, request: catalog_pb2.UpdateCameraRequest) -> catalog_pb2.Camera:
        """CatalogService.UpdateCamera."""
        return await self._catalog.UpdateCamera(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def delete_camera(self, environment_id: str, camera_id: str) -> None:
        """CatalogService.DeleteCamera."""
        await self._catalog.DeleteCamera(
            catalog_pb2.DeleteCameraRequest(environment_id=environment_id, camera_id=camera_id),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def test_camera_connection(
        self, environment_id: str, camera_id: str
    ) -> catalog_pb2.TestCameraConnectionResponse:
        """CatalogService.TestCameraConnection for a registered camera."""
        return await self._catalog.TestCameraConnection(
            catalog_pb2.TestCameraConnectionRequest(environment_id=environment_id, camera_id=camera_id),
            timeout=CAMERA_PROBE_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def get_camera_snapshot(
        self, environment_id: str, camera_id: str, detections: bool
    ) -> catalog_pb2.CameraSnapshot:
        """CatalogService.GetCameraSnapshot."""
        return await self._catalog.GetCameraSnapshot(
            catalog_pb2.GetCameraSnapshotRequest(
                environment_id=environment_id, camera_id=camera_id, draw_detections=detections
            ),
            timeout=CAMERA_PROBE_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def list_camera_health(
        self, environment_id: str, camera_id: str, limit: int
    ) -> catalog_pb2.ListCameraHealthResponse:
        """CatalogService.ListCameraHealth."""
        return await self._catalog.ListCameraHealth(
            catalog_pb2.ListCameraHealthRequest(environment_id=environment_id, camera_id=camera_id, limit=limit),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def get_trajectory(self, request: analytics_pb2.GetTrajectoryRequest) -> analytics_pb2.Trajectory:
        """AnalyticsService.GetTrajectory."""
        return await self._analytics.GetTrajectory(request, timeout=ANALYTICS_TIMEOUT_S, metadata=self._metadata)

    async def get_heatmap(self, request: analytics_pb2.GetHeatmapRequest) -> analytics_pb2.Heatmap:
        """AnalyticsService.GetHeatmap."""
        return await self._analytics.GetHeatmap(request, timeout=ANALYTICS_TIMEOUT_S, metadata=self._metadata)

    async def get_counts(self, request: analytics_pb2.GetCountsRequest) -> analytics_pb2.Counts:
        """AnalyticsService.GetCounts."""
        return await self._analytics.GetCounts(request, timeout=ANALYTICS_TIMEOUT_S, metadata=self._metadata)

    async def get_dwell(self, request: analytics_pb2.GetDwellRequest) -> analytics_pb2.Dwell:
        """AnalyticsService.GetDwell."""
        return await self._analytics.GetDwell(request, timeout=ANALYTICS_TIMEOUT_S, metadata=self._metadata)

    async def list_zones(self, environment_id: str) -> analytics_pb2.ListZonesResponse:
        """AnalyticsService.ListZones."""
        return await self._analytics.ListZones(
            analytics_pb2.ListZonesRequest(environment_id=environment_id),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def get_zone(self, environment_id: str, zone_id: str) -> analytics_pb2.Zone:
        """AnalyticsService.GetZone."""
        return await self._analytics.GetZone(
            analytics_pb2.GetZoneRequest(environment_id=environment_id, zone_id=zone_id),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def create_zone(self, environment_id: str, zone: analytics_pb2.Zone) -> analytics_pb2.Zone:
        """AnalyticsService.CreateZone."""
        return await self._analytics.CreateZone(
            analytics_pb2.CreateZoneRequest(environment_id=environment_id, zone=zone),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )

    async def update_zone(self, request: analytics_pb2.UpdateZoneRequest) -> analytics_pb2.Zone:
        """AnalyticsService.UpdateZone."""
        return await self._analytics.UpdateZone(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def delete_zone(self, environment_id: str, zone_id: str) -> None:
        """AnalyticsService.DeleteZone."""
        await self._analytics.DeleteZone(
            analytics_pb2.DeleteZoneRequest(environment_id=environment_id, zone_id=zone_id),
            timeout=UNARY_TIMEOUT_S,
            metadata=self._metadata,
        )
