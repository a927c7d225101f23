"""spoton.v1.AnalyticsService: a thin translation over :class:`~spoton_inference.services.analytics.Analytics`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from spoton.v1 import analytics_pb2, analytics_pb2_grpc, common_pb2
from spoton_inference.domain.zones import Zone
from spoton_inference.grpc_api.convert import timestamp
from spoton_inference.grpc_api.errors import unary
from spoton_inference.services.analytics import Analytics, Trajectory, TrajectoryPoint, TrajectorySegment
from spoton_inference.services.analytics import TimeRange as CoreTimeRange


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, analytics: Analytics) -> None:
        self.analytics = analytics

    @unary
    async def GetTrajectory(self, request, context):
        result = await self.analytics.trajectory(
            request.global_id,
            task_id=request.task_id,
            environment_id=request.environment_id,
            span=_span(request),
            simplify_tolerance_m=request.simplify_tolerance_m,
        )
        return _trajectory(result)

    @unary
    async def GetHeatmap(self, request, context):
        result = await self.analytics.heatmap(
            request.environment_id,
            cell_size_m=request.cell_size_m,
            span=_span(request),
            camera_ids=list(request.camera_ids),
            task_id=request.task_id,
            render_png=request.render_png,
        )
        return analytics_pb2.Heatmap(
            environment_id=result.environment_id,
            cell_size_m=result.cell_size_m,
            cells=[
                analytics_pb2.HeatmapCell(ix=x, iy=y, count=n)
                for x, y, n in zip(result.ix.tolist(), result.iy.tolist(), result.count.tolist(), strict=True)
            ],
            total=result.total,
            max_count=result.max_count,
            png=result.png,
            png_width=result.png_size[0],
            png_height=result.png_size[1],
        )

    @unary
    async def GetCounts(self, request, context):
        result = await self.analytics.counts(
            request.environment_id,
            bucket_seconds=request.bucket_seconds,
            span=_span(request),
            camera_ids=list(request.camera_ids),
            zone_ids=list(request.zone_ids),
            task_id=request.task_id,
        )
        return analytics_pb2.Counts(
            environment_id=result.environment_id,
            bucket_seconds=result.bucket_seconds,
            cameras=[
                analytics_pb2.CountBucket(bucket_start=timestamp(c.bucket_start), camera_id=c.key, people=c.people)
                for c in result.cameras
            ],
            zones=[
                analytics_pb2.CountBucket(bucket_start=timestamp(c.bucket_start), zone_id=c.key, people=c.people)
                for c in result.zones
            ],
        )

    @unary
    async def GetDwell(self, request, context):
        result = await self.analytics.dwell(
            request.environment_id,
            span=_span(request),
            zone_ids=list(request.zone_ids),
            task_id=request.task_id,
            global_id=request.global_id,
        )
        return analytics_pb2.Dwell(
            environment_id=result.environment_id,
            max_gap_seconds=result.max_gap_s,
            entries=[
                analytics_pb2.DwellEntry(
                    zone_id=e.zone_id,
                    task_id=e.task_id,
                    global_id=e.global_id,
                    dwell_seconds=e.dwell_seconds,
                    first_time=timestamp(e.first_time),
                    last_time=timestamp(e.last_time),
                )
                for e in result.entries
            ],
        )

    @unary
    async def ListZones(self, request, context):
        zones = await self.analytics.list_zones(request.environment_id)
        return analytics_pb2.ListZonesResponse(zones=[zone_message(z) for z in zones])

    @unary
    async def GetZone(self, request, context):
        return zone_message(await self.analytics.get_zone(request.environment_id, request.zone_id))

    @unary
    async def CreateZone(self, request, context):
        zone = await self.analytics.create_zone(
            request.environment_id,
            zone_id=request.zone.zone_id,
            name=request.zone.name,
            polygon=[(p.x, p.y) for p in request.zone.polygon],
        )
        return zone_message(zone)

    @unary
    async def UpdateZone(self, request, context):
        zone = await self.analytics.update_zone(
            request.environment_id,
            request.zone_id,
            name=request.name if request.HasField("name") else None,
            polygon=[(p.x, p.y) for p in request.polygon] or None,
        )
        return zone_message(zone)

    @unary
    async def DeleteZone(self, request, context):
        await self.analytics.delete_zone(request.environment_id, request.zone_id)
        return analytics_pb2.DeleteZoneResponse()


def _span(request: Any) -> CoreTimeRange:
    def when(name: str) -> dt.datetime | None:
        return getattr(request, name).ToDatetime(tzinfo=dt.UTC) if request.HasField(name) else None

    return CoreTimeRange(when("start_time"), when("end_time"))


def _point(p: TrajectoryPoint) -> analytics_pb2.TrajectoryPoint:
    return analytics_pb2.TrajectoryPoint(
        time=timestamp(p.time),
        global_frame_index=p.global_frame_index,
        map_coords=common_pb2.MapPoint(x=p.x, y=p.y),
        camera_ids=p.camera_ids,
        task_id=p.task_id,
    )


def _segment(s: TrajectorySegment) -> analytics_pb2.TrajectorySegment:
    first, last = s.points[0], s.points[-1]
    return analytics_pb2.TrajectorySegment(
        task_id=s.task_id,
        camera_id=s.camera_id,
        start_time=timestamp(first.time),
        end_time=timestamp(last.time),
        start_global_frame_index=first.global_frame_index,
        end_global_frame_index=last.global_frame_index,
        points=[_point(p) for p in s.points],
    )


def _trajectory(t: Trajectory) -> analytics_pb2.Trajectory:
    return analytics_pb2.Trajectory(
        global_id=t.global_id,
        environment_id=t.environment_id,
        points=[_point(p) for p in t.points],
        segments=[_segment(s) for s in t.segments],
        raw_point_count=t.raw_point_count,
        length_m=t.length_m,
    )


def zone_message(z: Zone) -> analytics_pb2.Zone:
    out = analytics_pb2.Zone(
        environment_id=z.environment_id,
        zone_id=z.zone_id,
        name=z.name,
        polygon=[common_pb2.MapPoint(x=x, y=y) for x, y in z.polygon],
    )
    if z.created_at is not None:
        out.created_at.CopyFrom(timestamp(z.created_at))
    if z.updated_at is not None:
        out.updated_at.CopyFrom(timestamp(z.updated_at))
    return out
