"""Analytics over the stored history: trajectories, heatmaps, counts, dwell, and zones.

Requests are validated here (InvalidArgument and NotFound say what to change); the
aggregates are computed by PostgreSQL (storage/analytics_store.py). Global ids are numbered
per task, so an identity is (task, global id): counts count those pairs, and a trajectory
asked by environment alone may hold several tasks' person with that id, each point and
segment saying which.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import numpy as np

from spoton_inference.domain.analytics import CountRow, DwellRow, HeatmapCells, HistoryFilter, TrajectoryRow
from spoton_inference.domain.environment import Environment
from spoton_inference.domain.errors import AlreadyExists, InvalidArgument, NotFound
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.domain.zones import Polygon, Zone, new_zone, validate_polygon
from spoton_inference.services.audit import Audit, AuditAction, audited
from spoton_inference.services.catalog import Catalog
from spoton_inference.services.request_args import known_cameras

# A camera's sighting of a person more than this after the previous one starts a new segment.
SEGMENT_GAP_S = 2.0
# In dwell, a step between sightings inside a zone longer than this is a new visit, not time spent.
DWELL_MAX_GAP_S = 2.0
# Smaller grid cells would overflow cell indices for any real site and mean nothing.
MIN_CELL_SIZE_M = 0.01
# Track points one trajectory answer may hold (about 1 h of one person in 3 cameras at 10 fps
# is 100 000), so it stays well inside the gRPC message limit.
MAX_TRAJECTORY_POINTS = 200_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Bucket widths up to a century: a wider one is one bucket over any history, and widths near
# int64's limit overflow PostgreSQL's interval (the facade's REST route has the same bound).
MAX_BUCKET_SECONDS = 100 * 366 * 24 * 3600
# A task's record by id (TaskManager.get): InvalidArgument for a malformed id, NotFound for an unknown one.
GetTask = Callable[[str], Awaitable[TaskRecord]]


@dataclasses.dataclass(frozen=True, slots=True)
class TimeRange:
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def check(self) -> TimeRange:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise InvalidArgument(
                f"end_time ({self.end.isoformat()}) must be after start_time ({self.start.isoformat()})"
            )
        return self


@dataclasses.dataclass(frozen=True, slots=True)
class TrajectoryPoint:
    time: dt.datetime
    global_frame_index: int
    x: float
    y: float
    camera_ids: tuple[str, ...]
    task_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class TrajectorySegment:
    task_id: str
    camera_id: str
    points: tuple[TrajectoryPoint, ...]  # first and last are the segment's ends, simplified or not


@dataclasses.dataclass(frozen=True, slots=True)
class Trajectory:
    global_id: int
    environment_id: str
    points: tuple[TrajectoryPoint, ...]
    segments: tuple[TrajectorySegment, ...]
    raw_point_count: int
    length_m: float


@dataclasses.dataclass(frozen=True, slots=True)
class Heatmap:
    environment_id: str
    cell_size_m: float
    ix: np.ndarray
    iy: np.ndarray
    count: np.ndarray
    png: bytes = b""
    png_size: tuple[int, int] = (0, 0)  # width, height

    @property
    def total(self) -> int:
        return int(self.count.sum())

    @property
    def max_count(self) -> int:
        return int(self.count.max()) if len(self.count) else 0


@dataclasses.dataclass(frozen=True, slots=True)
class Counts:
    environment_id: str
    bucket_seconds: int
    cameras: tuple[CountRow, ...]
    zones: tuple[CountRow, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Dwell:
    environment_id: str
    entries: tuple[DwellRow, ...]
    max_gap_s: float


class AnalyticsRecords(Protocol):
    """The stored history and zones (storage/analytics_store.AnalyticsStore)."""

    async def trajectory(self, f: HistoryFilter, global_id: int, limit: int) -> list[TrajectoryRow]: ...
    async def heatmap(self, f: HistoryFilter, cell_size_m: float) -> HeatmapCells: ...
    async def counts_per_camera(self, f: HistoryFilter, bucket_s: int, origin: dt.datetime) -> list[CountRow]: ...
    async def counts_per_zone(
        self, f: HistoryFilter, bucket_s: int, origin: dt.datetime, zone_ids: Sequence[str]
    ) -> list[CountRow]: ...
    async def dwell(
        self, f: HistoryFilter, zone_ids: Sequence[str], global_id: int, max_gap_s: float
    ) -> list[DwellRow]: ...
    async def list_zones(self, environment_id: str) -> list[Zone]: ...
    async def get_zone(self, environment_id: str, zone_id: str) -> Zone | None: ...
    async def insert_zone(self, environment_id: str, zone_id: str, name: str, polygon: Polygon) -> Zone | None: ...
    async def update_zone(
        self, environment_id: str, zone_id: str, name: str | None, polygon: Polygon | None
    ) -> Zone | None: ...
    async def delete_zone(self, environment_id: str, zone_id: str) -> bool: ...


class HeatmapPainter(Protocol):
    """Draws heatmap cells as a PNG over the environment's floor plan (files/heatmap_png.paint):
    the PNG and its (width, height). Blocking: called in a worker thread."""

    def __call__(self, env: Environment, cells: HeatmapCells, cell_size_m: float) -> tuple[bytes, tuple[int, int]]: ...


class Analytics:
    def __init__(
        self,
        store: AnalyticsRecords,
        catalog: Catalog,
        get_task: GetTask,
        audit: Audit | None = None,
        *,
        paint_heatmap: HeatmapPainter,
    ) -> None:
        self._store = store
        self._paint_heatmap = paint_heatmap
        self._audit = audit
        self._catalog = catalog
        self._get_task = get_task

    # -- queries -----------------------------------------------------------------------

    async def trajectory(
        self,
        global_id: int,
        *,
        task_id: str = "",
        environment_id: str = "",
        span: TimeRange = TimeRange(),
        simplify_tolerance_m: float = 0.0,
    ) -> Trajectory:
        if global_id <= 0:
            raise InvalidArgument(f"global_id must be a global person id (1 or more), got {global_id}")
        if not math.isfinite(simplify_tolerance_m) or simplify_tolerance_m < 0:
            raise InvalidArgument(
                f"simplify_tolerance_m must be 0 (off) or a distance in metres, got {simplify_tolerance_m}"
            )
        env = await self._scope(environment_id, task_id)
        rows = await self._store.trajectory(
            HistoryFilter(env.environment_id, span.check().start, span.end, task_id),
            global_id,
            MAX_TRAJECTORY_POINTS + 1,
        )
        if len(rows) > MAX_TRAJECTORY_POINTS:
            raise InvalidArgument(
                f"global id {global_id} has more than {MAX_TRAJECTORY_POINTS} track points in this range; "
                "narrow it with start_time and end_time"
            )
        points = _merge_cameras(rows)
        length = sum(math.hypot(b.x - a.x, b.y - a.y) for a, b in itertools.pairwise(points) if a.task_id == b.task_id)
        return Trajectory(
            global_id,
            env.environment_id,
            _simplified(points, simplify_tolerance_m),
            tuple(
                TrajectorySegment(s[0].task_id, s[0].camera_ids[0], _simplified(s, simplify_tolerance_m))
                for s in _segments(rows)
            ),
            len(points),
            length,
        )

    async def heatmap(
        self,
        environment_id: str,
        *,
        cell_size_m: float,
        span: TimeRange = TimeRange(),
        camera_ids: Sequence[str] = (),
        task_id: str = "",
        render_png: bool = False,
    ) -> Heatmap:
        if not math.isfinite(cell_size_m) or cell_size_m < MIN_CELL_SIZE_M:
            raise InvalidArgument(f"cell_size_m must be at least {MIN_CELL_SIZE_M} (metres), got {cell_size_m}")
        env = await self._scope(environment_id, task_id)
        f = HistoryFilter(env.environment_id, span.check().start, span.end, task_id, known_cameras(env, camera_ids))
        cells = await self._store.heatmap(f, cell_size_m)
        out = Heatmap(env.environment_id, cell_size_m, cells.ix, cells.iy, cells.count)
        if render_png:  # reading, scaling and encoding a large floor plan takes about a second
            png, size = await asyncio.to_thread(self._paint_heatmap, env, cells, cell_size_m)
            out = dataclasses.replace(out, png=png, png_size=size)
        return out

    async def counts(
        self,
        environment_id: str,
        *,
        bucket_seconds: int,
        span: TimeRange = TimeRange(),
        camera_ids: Sequence[str] = (),
        zone_ids: Sequence[str] = (),
        task_id: str = "",
    ) -> Counts:
        if not 1 <= bucket_seconds <= MAX_BUCKET_SECONDS:
            raise InvalidArgument(f"bucket_seconds must be 1 to {MAX_BUCKET_SECONDS} (a century), got {bucket_seconds}")
        env = await self._scope(environment_id, task_id)
        f = HistoryFilter(env.environment_id, span.check().start, span.end, task_id, known_cameras(env, camera_ids))
        zones = await self._zone_ids(env.environment_id, zone_ids)
        origin = span.start or EPOCH
        cameras = await self._store.counts_per_camera(f, bucket_seconds, origin)
        by_zone = await self._store.counts_per_zone(f, bucket_seconds, origin, zones)
        return Counts(env.environment_id, bucket_seconds, tuple(cameras), tuple(by_zone))

    async def dwell(
        self,
        environment_id: str,
        *,
        span: TimeRange = TimeRange(),
        zone_ids: Sequence[str] = (),
        task_id: str = "",
        global_id: int = 0,
    ) -> Dwell:
        if global_id < 0:
            raise InvalidArgument(f"global_id must be a global person id, or 0 for everyone; got {global_id}")
        env = await self._scope(environment_id, task_id)
        f = HistoryFilter(env.environment_id, span.check().start, span.end, task_id)
        zones = await self._zone_ids(env.environment_id, zone_ids)
        rows = await self._store.dwell(f, zones, global_id, DWELL_MAX_GAP_S)
        return Dwell(env.environment_id, tuple(rows), DWELL_MAX_GAP_S)

    # -- zones -------------------------------------------------------------------------

    async def list_zones(self, environment_id: str) -> list[Zone]:
        self._catalog.get(environment_id)
        return await self._store.list_zones(environment_id)

    async def get_zone(self, environment_id: str, zone_id: str) -> Zone:
        self._catalog.get(environment_id)
        zone = await self._store.get_zone(environment_id, zone_id)
        if zone is None:
            raise NotFound(await self._zone_missing(environment_id, zone_id))
        return zone

    @audited(
        AuditAction.ZONE_CREATE,
        lambda environment_id, **kw: f"environment/{environment_id}/zone/{kw.get('zone_id', '')}",
    )
    async def create_zone(
        self, environment_id: str, *, zone_id: str, name: str, polygon: Sequence[Sequence[float]]
    ) -> Zone:
        self._catalog.get(environment_id)
        zone_id, name, shape = new_zone(zone_id, name, polygon)
        zone = await self._store.insert_zone(environment_id, zone_id, name, shape)
        if zone is None:
            raise AlreadyExists(f"zone {zone_id!r} already exists in environment {environment_id!r}; update it instead")
        return zone

    @audited(
        AuditAction.ZONE_UPDATE, lambda environment_id, zone_id, **_: f"environment/{environment_id}/zone/{zone_id}"
    )
    async def update_zone(
        self,
        environment_id: str,
        zone_id: str,
        *,
        name: str | None = None,
        polygon: Sequence[Sequence[float]] | None = None,
    ) -> Zone:
        self._catalog.get(environment_id)
        shape = validate_polygon(polygon) if polygon else None
        zone = await self._store.update_zone(environment_id, zone_id, name or None, shape)
        if zone is None:
            raise NotFound(await self._zone_missing(environment_id, zone_id))
        return zone

    @audited(AuditAction.ZONE_DELETE, lambda environment_id, zone_id: f"environment/{environment_id}/zone/{zone_id}")
    async def delete_zone(self, environment_id: str, zone_id: str) -> None:
        self._catalog.get(environment_id)
        if not await self._store.delete_zone(environment_id, zone_id):
            raise NotFound(await self._zone_missing(environment_id, zone_id))

    # -- helpers -----------------------------------------------------------------------

    async def _scope(self, environment_id: str, task_id: str) -> Environment:
        """The environment asked about, directly or through a task (both must agree)."""
        if task_id:
            record = await self._get_task(task_id)
            if environment_id and environment_id != record.environment_id:
                raise InvalidArgument(
                    f"task {task_id} ran over environment {record.environment_id!r}, not {environment_id!r}"
                )
            environment_id = record.environment_id
        if not environment_id:
            raise InvalidArgument("environment_id (or task_id) is required")
        return self._catalog.get(environment_id)

    async def _zone_ids(self, environment_id: str, zone_ids: Sequence[str]) -> tuple[str, ...]:
        if not zone_ids:
            return ()
        known = {z.zone_id for z in await self._store.list_zones(environment_id)}
        unknown = sorted(set(zone_ids) - known)
        if unknown:
            raise InvalidArgument(
                f"zones {unknown} are not in environment {environment_id!r} (it has {sorted(known) or 'none'})"
            )
        return tuple(zone_ids)

    async def _zone_missing(self, environment_id: str, zone_id: str) -> str:
        known = ", ".join(z.zone_id for z in await self._store.list_zones(environment_id)) or "none"
        return f"zone {zone_id!r} not found in environment {environment_id!r} (it has: {known})"


def _merge_cameras(rows: list[TrajectoryRow]) -> list[TrajectoryPoint]:
    """One point per (task, frame): the mean of the cameras' positions. ``rows`` are in time order."""
    out: list[TrajectoryPoint] = []
    for (task_id, frame), grouped in itertools.groupby(rows, key=lambda r: (r.task_id, r.global_frame_index)):
        group = list(grouped)
        out.append(
            TrajectoryPoint(
                group[0].time,
                frame,
                sum(r.x for r in group) / len(group),
                sum(r.y for r in group) / len(group),
                tuple(r.camera_id for r in group),
                task_id,
            )
        )
    return out


def _segments(rows: list[TrajectoryRow]) -> list[list[TrajectoryPoint]]:
    """Runs of one camera seeing the person without a gap over SEGMENT_GAP_S, by start time."""
    open_runs: dict[tuple[str, str], list[TrajectoryPoint]] = {}
    done: list[list[TrajectoryPoint]] = []
    for r in rows:
        key = (r.task_id, r.camera_id)
        run = open_runs.get(key)
        if run is not None and (r.time - run[-1].time).total_seconds() > SEGMENT_GAP_S:
            done.append(run)
            run = None
        if run is None:
            run = open_runs[key] = []
        run.append(TrajectoryPoint(r.time, r.global_frame_index, r.x, r.y, (r.camera_id,), r.task_id))
    done += open_runs.values()
    return sorted(done, key=lambda run: (run[0].time, run[0].camera_ids[0]))


def _simplified(points: Sequence[TrajectoryPoint], tolerance_m: float) -> tuple[TrajectoryPoint, ...]:
    if tolerance_m <= 0 or len(points) < 3:
        return tuple(points)
    keep: list[int] = []
    start = 0
    # Simplify within each task: two tasks' paths are not one line.
    for end in range(1, len(points) + 1):
        if end == len(points) or points[end].task_id != points[start].task_id:
            xy = np.array([(p.x, p.y) for p in points[start:end]])
            keep += [start + int(k) for k in douglas_peucker(xy, tolerance_m)]
            start = end
    return tuple(points[k] for k in keep)


def douglas_peucker(xy: np.ndarray, tolerance: float) -> np.ndarray:
    """Indices of the points of polyline ``xy`` (n x 2) kept by Douglas-Peucker at ``tolerance``.

    >>> douglas_peucker(np.array([[0, 0], [1, 0.05], [2, 0], [2, 2]]), 0.1).tolist()
    [0, 2, 3]
    """
    n = len(xy)
    if n < 3 or tolerance <= 0:
        return np.arange(n)
    keep = np.zeros(n, bool)
    keep[[0, n - 1]] = True
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        chord, rel = xy[j] - xy[i], xy[i + 1 : j] - xy[i]
        length = math.hypot(chord[0], chord[1])
        if length == 0:  # a closed loop: distance from the shared end
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(chord[0] * rel[:, 1] - chord[1] * rel[:, 0]) / length
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            m = i + 1 + k
            keep[m] = True
            stack += [(i, m), (m, j)]
    return np.flatnonzero(keep)
