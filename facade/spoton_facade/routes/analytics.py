"""``/api/v1/analytics`` (trajectory, heatmap, counts, dwell) and an environment's zones (AnalyticsService)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from spoton.v1 import analytics_pb2
from spoton_facade import to_proto
from spoton_facade.clients.inference import InferenceClient
from spoton_facade.contract import INT32_MAX, UUID
from spoton_facade.problems import LOOKUP_PROBLEMS, UPSTREAM_PROBLEMS, problem_responses
from spoton_facade.schemas.analytics import Counts, Dwell, Heatmap, Trajectory, Zone, ZoneBody, ZoneList, ZonePatchBody
from spoton_facade.schemas.base import from_proto

PNG = "image/png"
# The service's smallest heatmap cell.
MIN_CELL_SIZE_M = 0.01
WRITE_PROBLEMS = {**problem_responses(404, 409), **UPSTREAM_PROBLEMS}
ZONE = "/{zone_id:str}"

# Given to the protobuf requests through _in_timestamp_range: Timestamp fields take a datetime,
# a naive one as UTC.
Start = Annotated[dt.datetime | None, QueryParameter(description="From this time (ISO 8601, UTC if no offset)")]
End = Annotated[dt.datetime | None, QueryParameter(description="Up to this time, excluded")]
# Bucket widths up to a century: a wider one is one bucket over any history, and widths near
# int64's limit overflow the service's timedelta (a 502 before).
MAX_BUCKET_SECONDS = 100 * 366 * 24 * 3600
# A task id, or "" for none.
TASK_ID_OR_EMPTY = r"^$|" + UUID

TaskFilter = Annotated[str, QueryParameter(pattern=TASK_ID_OR_EMPTY, description="Only this task's track points")]
EnvironmentFilter = Annotated[str, QueryParameter(description="The environment (or give task_id)")]
Cameras = Annotated[list[str] | None, QueryParameter(description="Only these cameras (repeat the parameter)")]
Zones = Annotated[list[str] | None, QueryParameter(description="Only these zones (repeat the parameter)")]


def _in_timestamp_range(value: dt.datetime | None) -> dt.datetime | None:
    """``value``, or the end of the Timestamp range (years 1 to 9999, UTC) when its offset puts
    it beyond one (``9999-12-31T23:00:00-05:00``): it bounds a time range just the same, where
    converting it would overflow (a 500 before)."""
    if value is None or value.tzinfo is None:
        return value
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        end = dt.datetime.min if value.year == dt.MINYEAR else dt.datetime.max
        return end.replace(tzinfo=dt.UTC)


@dataclasses.dataclass
class _JsonOrPng(Operation):
    """The heatmap's 200 is JSON or, when asked, a PNG; Litestar documents only the JSON."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.content[PNG] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))


class AnalyticsController(Controller):
    """Questions over the stored history. Times are video time; ranges are [start_time, end_time)."""

    path = "/analytics"
    tags = ("analytics",)

    @get(
        "/trajectory/{global_person_id:int}",
        summary="Where a person went",
        description="Map points in time order (one per frame, the mean over the cameras that saw the person) "
        "and per-camera segments. Global ids are numbered per task: give `task_id`, or `environment_id` for "
        "every task's person with this id (points and segments say which task).",
        responses=LOOKUP_PROBLEMS,
    )
    async def trajectory(
        self,
        global_person_id: Annotated[int, PathParameter(ge=1, le=INT32_MAX, description="A global person id")],
        inference: NamedDependency[InferenceClient],
        task_id: TaskFilter = "",
        environment_id: EnvironmentFilter = "",
        start_time: Start = None,
        end_time: End = None,
        simplify_tolerance_m: Annotated[
            float, QueryParameter(ge=0, description="Douglas-Peucker tolerance in metres; 0 keeps every point")
        ] = 0.0,
    ) -> Trajectory:
        """AnalyticsService.GetTrajectory."""
        request = analytics_pb2.GetTrajectoryRequest(
            global_id=global_person_id,
            task_id=task_id,
            environment_id=environment_id,
            start_time=_in_timestamp_range(start_time),
            end_time=_in_timestamp_range(end_time),
            simplify_tolerance_m=simplify_tolerance_m,
        )
        return from_proto(await inference.get_trajectory(request), Trajectory)

    @get(
        "/heatmap",
        summary="Where people spend time",
        description="Track points per map grid cell, as JSON; with `format=png` (or `Accept: image/png`) a PNG "
        "over the floor-plan image, or over a plain background spanning the cameras when there is none.",
        responses=LOOKUP_PROBLEMS,
        operation_class=_JsonOrPng,
    )
    async def heatmap(
        self,
        inference: NamedDependency[InferenceClient],
        request: Request[Any, Any, Any],
        environment_id: EnvironmentFilter = "",
        cell_size_m: Annotated[float, QueryParameter(ge=MIN_CELL_SIZE_M, description="Grid cell edge in metres")] = 0.5,
        start_time: Start = None,
        end_time: End = None,
        camera_ids: Cameras = None,
        task_id: TaskFilter = "",
        output_format: Annotated[
            Literal["json", "png"] | None, QueryParameter(name="format", description="Overrides the Accept header")
        ] = None,
    ) -> Response[Heatmap]:
        """AnalyticsService.GetHeatmap."""
        png = output_format == "png" or (
            output_format is None and request.accept.best_match(["application/json", PNG]) == PNG
        )
        heatmap = await inference.get_heatmap(
            analytics_pb2.GetHeatmapRequest(
                environment_id=environment_id,
                cell_size_m=cell_size_m,
                start_time=_in_timestamp_range(start_time),
                end_time=_in_timestamp_range(end_time),
                camera_ids=camera_ids or [],
                task_id=task_id,
                render_png=png,
            )
        )
        if png:
            return Response(heatmap.png, media_type=PNG)  # type: ignore[arg-type]
        return Response(from_proto(heatmap, Heatmap))

    @get(
        "/counts",
        summary="People per camera and per zone over time",
        description="Distinct people (task, global id) per time bucket, per camera and per zone.",
        responses=LOOKUP_PROBLEMS,
    )
    async def counts(
        self,
        inference: NamedDependency[InferenceClient],
        environment_id: EnvironmentFilter = "",
        bucket_seconds: Annotated[
            int, QueryParameter(ge=1, le=MAX_BUCKET_SECONDS, description="Bucket width; buckets start at start_time")
        ] = 60,
        start_time: Start = None,
        end_time: End = None,
        camera_ids: Cameras = None,
        zone_ids: Zones = None,
        task_id: TaskFilter = "",
    ) -> Counts:
        """AnalyticsService.GetCounts."""
        request = analytics_pb2.GetCountsRequest(
            environment_id=environment_id,
            bucket_seconds=bucket_seconds,
            start_time=_in_timestamp_range(start_time),
            end_time=_in_timestamp_range(end_time),
            camera_ids=camera_ids or [],
            zone_ids=zone_ids or [],
            task_id=task_id,
        )
        return from_proto(await inference.get_counts(request), Counts)

    @get(
        "/dwell",
        summary="Time each person spent in each zone",
        description="Per zone and identity: the time between consecutive sightings inside the zone; a gap "
        "longer than `max_gap_seconds` ends a visit.",
        responses=LOOKUP_PROBLEMS,
    )
    async def dwell(
        self,
        inference: NamedDependency[InferenceClient],
        environment_id: EnvironmentFilter = "",
        start_time: Start = None,
        end_time: End = None,
        zone_ids: Zones = None,
        task_id: TaskFilter = "",
        global_id: Annotated[
            int, QueryParameter(ge=0, le=INT32_MAX, description="Only this global person id; 0: everyone")
        ] = 0,
    ) -> Dwell:
        """AnalyticsService.GetDwell."""
        request = analytics_pb2.GetDwellRequest(
            environment_id=environment_id,
            start_time=_in_timestamp_range(start_time),
            end_time=_in_timestamp_range(end_time),
            zone_ids=zone_ids or [],
            task_id=task_id,
            global_id=global_id,
        )
        return from_proto(await inference.get_dwell(request), Dwell)


class ZoneController(Controller):
    """Zones: polygons on an environment's floor plan, for counts, dwell and entry/exit events."""

    path = "/environments/{environment_id:str}/zones"
    tags = ("environments",)

    @get(summary="List an environment's zones", responses=LOOKUP_PROBLEMS)
    async def list_zones(self, environment_id: FromPath[str], inference: NamedDependency[InferenceClient]) -> ZoneList:
        """AnalyticsService.ListZones."""
        return from_proto(await inference.list_zones(environment_id), ZoneList)

    @post(
        summary="Add a zone",
        description="400 for a polygon with fewer than 3 points, on one line, or self-intersecting; "
        "409 when the zone id is taken.",
        status_code=201,
        responses=WRITE_PROBLEMS,
    )
    async def create_zone(
        self, environment_id: FromPath[str], data: JSONBody[ZoneBody], inference: NamedDependency[InferenceClient]
    ) -> Zone:
        """AnalyticsService.CreateZone."""
        return from_proto(await inference.create_zone(environment_id, to_proto.zone(data)), Zone)

    @get(ZONE, summary="Get a zone", responses=LOOKUP_PROBLEMS)
    async def get_zone(
        self, environment_id: FromPath[str], zone_id: FromPath[str], inference: NamedDependency[InferenceClient]
    ) -> Zone:
        """AnalyticsService.GetZone."""
        return from_proto(await inference.get_zone(environment_id, zone_id), Zone)

    @patch(ZONE, summary="Update a zone", responses=WRITE_PROBLEMS)
    async def update_zone(
        self,
        environment_id: FromPath[str],
        zone_id: FromPath[str],
        data: JSONBody[ZonePatchBody],
        inference: NamedDependency[InferenceClient],
    ) -> Zone:
        """AnalyticsService.UpdateZone: only the fields in the body change."""
        return from_proto(await inference.update_zone(to_proto.zone_update(environment_id, zone_id, data)), Zone)

    @delete(ZONE, summary="Delete a zone", responses=LOOKUP_PROBLEMS)
    async def delete_zone(
        self, environment_id: FromPath[str], zone_id: FromPath[str], inference: NamedDependency[InferenceClient]
    ) -> None:
        """AnalyticsService.DeleteZone."""
        await inference.delete_zone(environment_id, zone_id)
