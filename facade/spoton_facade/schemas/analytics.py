"""The REST contract of ``/api/v1/analytics`` and zones: ``spoton.v1`` analytics messages as JSON.

Built with :func:`spoton_facade.schemas.base.from_proto`, so field names follow the ``.proto``,
map points are ``[x, y]`` in metres and times are ISO-8601 UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from spoton_facade.contract import DefaultName, Name, NewIdOrEmpty
from spoton_facade.schemas.base import Point

# The service's bounds on a zone's corners.
MIN_POLYGON_POINTS = 3
MAX_POLYGON_POINTS = 1000
Polygon = Annotated[list[Point], msgspec.Meta(min_length=MIN_POLYGON_POINTS, max_length=MAX_POLYGON_POINTS)]


class TrajectoryPoint(msgspec.Struct):
    """``spoton.v1.TrajectoryPoint``: in ``points`` the mean of the cameras that saw the person."""

    time: dt.datetime | None
    global_frame_index: int
    map_coords: Point | None
    camera_ids: list[str]
    task_id: str


class TrajectorySegment(msgspec.Struct):
    """``spoton.v1.TrajectorySegment``: one camera seeing the person without a gap over 2 s."""

    task_id: str
    camera_id: str
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    start_global_frame_index: int
    end_global_frame_index: int
    points: list[TrajectoryPoint]


class Trajectory(msgspec.Struct):
    """``spoton.v1.Trajectory``."""

    global_id: int
    environment_id: str
    points: list[TrajectoryPoint]
    segments: list[TrajectorySegment]
    raw_point_count: int
    length_m: float


class HeatmapCell(msgspec.Struct):
    """Cell (ix, iy) covers x in [ix, ix + 1) * cell_size_m and y in [iy, iy + 1) * cell_size_m."""

    ix: int
    iy: int
    count: int


class Heatmap(msgspec.Struct):
    """``spoton.v1.Heatmap`` without the PNG (ask for ``format=png`` or ``Accept: image/png``)."""

    environment_id: str
    cell_size_m: float
    cells: list[HeatmapCell]
    total: int
    max_count: int


class CountBucket(msgspec.Struct):
    """``spoton.v1.CountBucket``: distinct people in a bucket, for a camera or a zone."""

    bucket_start: dt.datetime | None
    camera_id: str
    zone_id: str
    people: int


class Counts(msgspec.Struct):
    """``spoton.v1.Counts``."""

    environment_id: str
    bucket_seconds: int
    cameras: list[CountBucket]
    zones: list[CountBucket]


class DwellEntry(msgspec.Struct):
    """``spoton.v1.DwellEntry``."""

    zone_id: str
    task_id: str
    global_id: int
    dwell_seconds: float
    first_time: dt.datetime | None
    last_time: dt.datetime | None


class Dwell(msgspec.Struct):
    """``spoton.v1.Dwell``."""

    environment_id: str
    entries: list[DwellEntry]
    max_gap_seconds: float


class Zone(msgspec.Struct):
    """``spoton.v1.Zone``: a polygon on the floor plan, in map metres."""

    environment_id: str
    zone_id: str
    name: str
    polygon: list[Point]
    created_at: dt.datetime | None
    updated_at: dt.datetime | None


class ZoneList(msgspec.Struct):
    """``spoton.v1.ListZonesResponse``."""

    zones: list[Zone]


class ZoneBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST .../zones``: 3 or more [x, y] points in order around the zone; ``zone_id`` is generated when empty."""

    polygon: Polygon
    zone_id: NewIdOrEmpty = ""
    name: DefaultName = ""


class ZonePatchBody(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH .../zones/{zone_id}``: absent fields stay as they are."""

    name: Name | None = None
    polygon: Polygon | None = None
