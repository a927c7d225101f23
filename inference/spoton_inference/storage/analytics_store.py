"""SQL for analytics over the history (track points, zones), and zone records.

Every aggregate is computed by PostgreSQL: heatmap cells with GROUP BY over the grid cell,
counts per time bucket (TimescaleDB's ``time_bucket`` where the extension is installed,
``date_bin`` otherwise), zone membership with the built-in ``point <@ polygon`` operator.
Filters are added only when given, so the planner can prune partitions by time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg
import numpy as np

from spoton_inference.domain.analytics import CountRow, DwellRow, HeatmapCells, HistoryFilter, TrajectoryRow
from spoton_inference.domain.errors import NotFound
from spoton_inference.domain.zones import Polygon, Zone
from spoton_inference.storage.partitioning import timescale_installed
from spoton_inference.storage.postgres import Database


class _Where:
    """WHERE clauses with numbered parameters."""

    def __init__(self, alias: str = "") -> None:
        self._prefix = f"{alias}." if alias else ""
        self.clauses: list[str] = []
        self.args: list[object] = []

    def arg(self, value: object) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, template: str, value: object) -> None:
        """``template`` has ``{c}`` for the column prefix and ``{a}`` for the parameter."""
        self.clauses.append(template.format(c=self._prefix, a=self.arg(value)))

    def history(self, f: HistoryFilter) -> _Where:
        self.add("{c}environment_id = {a}", f.environment_id)
        self.clauses.append(f"{self._prefix}map_x IS NOT NULL AND {self._prefix}map_y IS NOT NULL")
        if f.start is not None:
            self.add("{c}time >= {a}", f.start)
        if f.end is not None:
            self.add("{c}time < {a}", f.end)
        if f.task_id:
            self.add("{c}task_id = {a}", uuid.UUID(f.task_id))
        if f.camera_ids:
            self.add("{c}camera_id = ANY({a}::text[])", list(f.camera_ids))
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "TRUE"


class AnalyticsStore:
    def __init__(self, db: Database, *, timescale: bool | None = None) -> None:
        """``timescale``: whether to use TimescaleDB's functions; None asks the database."""
        self._db = db
        self._timescale = timescale

    async def uses_timescale(self) -> bool:
        """Whether TimescaleDB is installed in the database (asked once)."""
        if self._timescale is None:
            async with self._db.pool.acquire() as conn:
                self._timescale = await timescale_installed(conn)
        return self._timescale

    # -- queries -----------------------------------------------------------------------

    async def trajectory(self, f: HistoryFilter, global_id: int, limit: int) -> list[TrajectoryRow]:
        """One person's track points with map coordinates, in time order, at most ``limit``."""
        where = _Where().history(f)
        where.add("global_id = {a}", global_id)
        sql = (
            "SELECT task_id, camera_id, global_frame_index, time, map_x, map_y FROM track_points "
            f"WHERE {where.sql} ORDER BY time, task_id, global_frame_index, camera_id LIMIT {where.arg(limit)}"
        )
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(sql, *where.args)
        return [TrajectoryRow(str(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def heatmap(self, f: HistoryFilter, cell_size_m: float) -> HeatmapCells:
        """Track points per grid cell (only cells that have some)."""
        where = _Where().history(f)
        cell = where.arg(cell_size_m)
        sql = (
            f"SELECT floor(map_x / {cell})::int AS ix, floor(map_y / {cell})::int AS iy, count(*) AS n "
            f"FROM track_points WHERE {where.sql} GROUP BY 1, 2 ORDER BY 2, 1"
        )
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(sql, *where.args)
        table = np.array([tuple(r) for r in rows], dtype=np.int64).reshape(-1, 3)
        return HeatmapCells(table[:, 0], table[:, 1], table[:, 2])

    async def counts_per_camera(self, f: HistoryFilter, bucket_s: int, origin: dt.datetime) -> list[CountRow]:
        where = _Where().history(f)
        bucket = await self._bucket(where, bucket_s, origin, "time")
        sql = (
            f"SELECT {bucket} AS bucket, camera_id, count(DISTINCT (task_id, global_id)) AS people "
            f"FROM track_points WHERE {where.sql} GROUP BY 1, 2 ORDER BY 1, 2"
        )
        async with self._db.pool.acquire() as conn:
            return [CountRow(*r) for r in await conn.fetch(sql, *where.args)]

    async def counts_per_zone(
        self, f: HistoryFilter, bucket_s: int, origin: dt.datetime, zone_ids: Sequence[str]
    ) -> list[CountRow]:
        where = _Where("tp").history(f)
        bucket = await self._bucket(where, bucket_s, origin, "tp.time")
        if zone_ids:
            where.add("z.zone_id = ANY({a}::text[])", list(zone_ids))
        sql = (
            f"SELECT {bucket} AS bucket, z.zone_id, count(DISTINCT (tp.task_id, tp.global_id)) AS people "
            "FROM track_points tp JOIN zones z "
            "  ON z.environment_id = tp.environment_id AND point(tp.map_x, tp.map_y) <@ z.polygon "
            f"WHERE {where.sql} GROUP BY 1, 2 ORDER BY 1, 2"
        )
        async with self._db.pool.acquire() as conn:
            return [CountRow(*r) for r in await conn.fetch(sql, *where.args)]

    async def dwell(
        self, f: HistoryFilter, zone_ids: Sequence[str], global_id: int, max_gap_s: float
    ) -> list[DwellRow]:
        """Per zone and identity: the sum of steps between consecutive sightings inside, up to ``max_gap_s`` each."""
        where = _Where("tp").history(f)
        if zone_ids:
            where.add("z.zone_id = ANY({a}::text[])", list(zone_ids))
        if global_id:
            where.add("tp.global_id = {a}", global_id)
        gap = where.arg(max_gap_s)
        sql = f"""
            WITH inside AS (
                SELECT DISTINCT z.zone_id, tp.task_id, tp.global_id, tp.time
                FROM track_points tp JOIN zones z
                  ON z.environment_id = tp.environment_id AND point(tp.map_x, tp.map_y) <@ z.polygon
                WHERE {where.sql}
            ), steps AS (
                SELECT *, extract(epoch FROM time - lag(time) OVER (
                    PARTITION BY zone_id, task_id, global_id ORDER BY time)) AS step
                FROM inside
            )
            SELECT zone_id, task_id, global_id,
                   coalesce(sum(step) FILTER (WHERE step <= {gap}::float8), 0)::float8 AS dwell,
                   min(time), max(time)
            FROM steps GROUP BY 1, 2, 3 ORDER BY 1, 4 DESC, 2, 3"""
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(sql, *where.args)
        return [DwellRow(r[0], str(r[1]), r[2], float(r[3]), r[4], r[5]) for r in rows]

    async def _bucket(self, where: _Where, bucket_s: int, origin: dt.datetime, column: str) -> str:
        stride, start = where.arg(dt.timedelta(seconds=bucket_s)), where.arg(origin)
        if await self.uses_timescale():
            return f"time_bucket({stride}::interval, {column}, origin => {start}::timestamptz)"
        return f"date_bin({stride}::interval, {column}, {start}::timestamptz)"

    # -- zones -------------------------------------------------------------------------

    async def list_zones(self, environment_id: str) -> list[Zone]:
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM zones WHERE environment_id = $1 ORDER BY zone_id", environment_id)
        return [_zone(r) for r in rows]

    async def get_zone(self, environment_id: str, zone_id: str) -> Zone | None:
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM zones WHERE environment_id = $1 AND zone_id = $2", environment_id, zone_id
            )
        return _zone(row) if row else None

    async def insert_zone(self, environment_id: str, zone_id: str, name: str, polygon: Polygon) -> Zone | None:
        """The new zone, or None when the id is taken; NotFound when the environment was deleted
        meanwhile (callers check that it exists first)."""
        try:
            async with self._db.pool.acquire() as conn:
                row = await conn.fetchrow(
                    """INSERT INTO zones (environment_id, zone_id, name, polygon) VALUES ($1, $2, $3, $4)
                       ON CONFLICT DO NOTHING RETURNING *""",
                    environment_id,
                    zone_id,
                    name,
                    polygon,
                )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"environment {environment_id!r} was deleted while the zone was being created") from None
        return _zone(row) if row else None

    async def update_zone(
        self, environment_id: str, zone_id: str, name: str | None, polygon: Polygon | None
    ) -> Zone | None:
        """The changed zone, or None when there is no such zone."""
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow(
                """UPDATE zones SET name = coalesce($3, name), polygon = coalesce($4, polygon), updated_at = now()
                   WHERE environment_id = $1 AND zone_id = $2 RETURNING *""",
                environment_id,
                zone_id,
                name,
                polygon,
            )
        return _zone(row) if row else None

    async def delete_zone(self, environment_id: str, zone_id: str) -> bool:
        async with self._db.pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM zones WHERE environment_id = $1 AND zone_id = $2", environment_id, zone_id
            )
        return status != "DELETE 0"


def _zone(row: asyncpg.Record) -> Zone:
    return Zone(
        row["environment_id"],
        row["zone_id"],
        row["name"],
        tuple((float(p[0]), float(p[1])) for p in row["polygon"]),
        row["created_at"],
        row["updated_at"],
    )
