"""AnalyticsService over gRPC on the real service: zones, trajectory, heatmap (with PNG), counts,
dwell, status codes, and reflection of its methods."""

from __future__ import annotations

import datetime as dt
import uuid

import cv2
import grpc
import numpy as np
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from spoton.v1 import analytics_pb2, analytics_pb2_grpc, common_pb2
from spoton_inference.storage.task_store import TaskStore

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
ROOM = [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)]


def _ts(value: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _polygon(points) -> list[common_pb2.MapPoint]:
    return [common_pb2.MapPoint(x=x, y=y) for x, y in points]


@pytest_asyncio.fixture(scope="module")
async def analytics(channel) -> analytics_pb2_grpc.AnalyticsServiceStub:
    return analytics_pb2_grpc.AnalyticsServiceStub(channel)


@pytest_asyncio.fixture(scope="module")
async def history(live_service, register) -> tuple[str, str]:
    """An environment with a task whose person 1 walks along y = 1 from x = 0 to 3.9 m, 10 fps."""
    env_id = (await register("analytics-grpc")).environment_id
    db = live_service.app.db
    task = (await TaskStore(db).insert_task(env_id, ["c1", "c2"], 40)).task_id
    rows = [
        (T0 + dt.timedelta(seconds=f / 10), uuid.UUID(task), env_id, "c1", f, 1, 1, 0, 0, 1, 1, 0.5, f * 0.1, 1.0)
        for f in range(40)
    ]
    await TaskStore(db).copy_track_points(rows)
    return env_id, task


async def test_zone_crud_and_its_errors(analytics, history):
    env_id, _ = history
    zone = analytics_pb2.Zone(zone_id="room", name="Room", polygon=_polygon(ROOM))
    made = await analytics.CreateZone(analytics_pb2.CreateZoneRequest(environment_id=env_id, zone=zone))
    assert (made.zone_id, made.name, len(made.polygon)) == ("room", "Room", 4) and made.HasField("created_at")
    got = await analytics.GetZone(analytics_pb2.GetZoneRequest(environment_id=env_id, zone_id="room"))
    assert got == made
    renamed = await analytics.UpdateZone(
        analytics_pb2.UpdateZoneRequest(environment_id=env_id, zone_id="room", name="Big room")
    )
    assert renamed.name == "Big room" and renamed.polygon == made.polygon
    listed = await analytics.ListZones(analytics_pb2.ListZonesRequest(environment_id=env_id))
    assert [z.zone_id for z in listed.zones] == ["room"]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await analytics.CreateZone(analytics_pb2.CreateZoneRequest(environment_id=env_id, zone=zone))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    bowtie = analytics_pb2.Zone(zone_id="bow", polygon=_polygon([(0, 0), (2, 2), (2, 0), (0, 2)]))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await analytics.CreateZone(analytics_pb2.CreateZoneRequest(environment_id=env_id, zone=bowtie))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "self-intersecting" in err.value.details()
    line = analytics_pb2.Zone(zone_id="line", polygon=_polygon([(0, 0), (2, 2)]))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await analytics.CreateZone(analytics_pb2.CreateZoneRequest(environment_id=env_id, zone=line))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "at least 3 points" in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await analytics.ListZones(analytics_pb2.ListZonesRequest(environment_id="nowhere"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    await analytics.DeleteZone(analytics_pb2.DeleteZoneRequest(environment_id=env_id, zone_id="room"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await analytics.DeleteZone(analytics_pb2.DeleteZoneRequest(environment_id=env_id, zone_id="room"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_trajectory_heatmap_counts_and_dwell(analytics, history):
    env_id, task = history
    await analytics.CreateZone(
        analytics_pb2.CreateZoneRequest(
            environment_id=env_id, zone=analytics_pb2.Zone(zone_id="west", polygon=_polygon(ROOM))
        )
    )
    trajectory = await analytics.GetTrajectory(
        analytics_pb2.GetTrajectoryRequest(global_id=1, task_id=task, simplify_tolerance_m=0.05)
    )
    assert trajectory.raw_point_count == 40 and trajectory.length_m == pytest.approx(3.9)
    assert [p.global_frame_index for p in trajectory.points] == [0, 39]
    [segment] = trajectory.segments
    assert (segment.camera_id, segment.start_global_frame_index, segment.end_global_frame_index) == ("c1", 0, 39)

    heatmap = await analytics.GetHeatmap(
        analytics_pb2.GetHeatmapRequest(environment_id=env_id, cell_size_m=1.0, render_png=True)
    )
    assert [(c.ix, c.iy, c.count) for c in heatmap.cells] == [(0, 1, 10), (1, 1, 10), (2, 1, 10), (3, 1, 10)]
    assert heatmap.total == 40 and heatmap.max_count == 10
    image = cv2.imdecode(np.frombuffer(heatmap.png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (heatmap.png_height, heatmap.png_width)

    counts = await analytics.GetCounts(
        analytics_pb2.GetCountsRequest(environment_id=env_id, bucket_seconds=3600, start_time=_ts(T0))
    )
    assert [(c.camera_id, c.people) for c in counts.cameras] == [("c1", 1)]
    assert [(c.zone_id, c.people) for c in counts.zones] == [("west", 1)]
    assert counts.cameras[0].bucket_start.ToDatetime(tzinfo=dt.UTC) == T0

    dwell = await analytics.GetDwell(analytics_pb2.GetDwellRequest(environment_id=env_id, zone_ids=["west"]))
    [entry] = dwell.entries
    # Inside for x in 0-2 m: frames 0-20, i.e. 2 s.
    assert (entry.zone_id, entry.task_id, entry.global_id) == ("west", task, 1)
    assert entry.dwell_seconds == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("request_", "code", "text"),
    [
        (analytics_pb2.GetHeatmapRequest(environment_id="x", cell_size_m=0), "INVALID_ARGUMENT", "cell_size_m"),
        (analytics_pb2.GetHeatmapRequest(environment_id="nowhere", cell_size_m=1), "NOT_FOUND", "nowhere"),
        (
            analytics_pb2.GetHeatmapRequest(
                environment_id="analytics-grpc", cell_size_m=1, start_time=_ts(T0), end_time=_ts(T0)
            ),
            "INVALID_ARGUMENT",
            "end_time",
        ),
        (analytics_pb2.GetCountsRequest(environment_id="analytics-grpc"), "INVALID_ARGUMENT", "bucket_seconds"),
        (analytics_pb2.GetTrajectoryRequest(global_id=1), "INVALID_ARGUMENT", "environment_id"),
        (analytics_pb2.GetTrajectoryRequest(global_id=1, task_id=str(uuid.uuid4())), "NOT_FOUND", "task"),
    ],
)
async def test_bad_requests_get_the_right_status(analytics, history, request_, code, text):
    method = {
        analytics_pb2.GetHeatmapRequest: analytics.GetHeatmap,
        analytics_pb2.GetCountsRequest: analytics.GetCounts,
        analytics_pb2.GetTrajectoryRequest: analytics.GetTrajectory,
    }[type(request_)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await method(request_)
    assert err.value.code().name == code and text in err.value.details()


async def test_reflection_and_health_know_the_service(channel):
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="spoton.v1.AnalyticsService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests = [reflection_pb2.ServerReflectionRequest(file_containing_symbol="spoton.v1.AnalyticsService.GetHeatmap")]
    [reply] = [r async for r in call(iter(requests))]
    assert reply.HasField("file_descriptor_response"), reply
