"""Time partitioning of ``track_points``, and retention of the history tables.

Two layouts, chosen once by migration 0003 (:func:`convert_track_points`, run by migrate.py):

* **TimescaleDB** (the production compose) when the server can load the extension: the table
  becomes a hypertable with daily chunks and compression; :func:`maintain`, called at start-up
  and hourly, sets the compression and retention policies (:func:`timescale_policy_statements`),
  and TimescaleDB's jobs apply them.
* **Declarative partitioning** otherwise (the embedded PostgreSQL): one partition per UTC day,
  ``track_points_pYYYYMMDD``, plus a DEFAULT partition so that an insert never fails for lack of
  a partition. :func:`maintain`, called at start-up and hourly, creates the days ahead, moves
  rows that landed in the default partition into their day, and drops days past retention.

Existing rows are kept by both conversions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re

import asyncpg

log = logging.getLogger(__name__)

TABLE = "track_points"
DEFAULT_PARTITION = "track_points_default"
_PARTITION = re.compile(r"^track_points_p(\d{8})$")
# Days of partitions kept ready beyond today.
AHEAD_DAYS = 7
# Serialises maintenance across replicas (next to migrate.py's 0x5907_0001).
_LOCK_KEY = 0x5907_0003

INDEXES = (
    "CREATE INDEX IF NOT EXISTS track_points_task_idx ON track_points (task_id, global_frame_index)",
    "CREATE INDEX IF NOT EXISTS track_points_identity_idx ON track_points (environment_id, global_id, time)",
    # Heatmaps, counts and dwell select an environment over a time range.
    "CREATE INDEX IF NOT EXISTS track_points_environment_time_idx ON track_points (environment_id, time)",
)

# Available is not enough: the library must be preloaded for CREATE EXTENSION to work.
TIMESCALE_READY_SQL = """SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries') LIKE '%timescaledb%'"""


@dataclasses.dataclass(frozen=True, slots=True)
class MaintenanceReport:
    layout: str  # "partitions", "timescaledb" or "none"
    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()


async def timescale_ready(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(TIMESCALE_READY_SQL))


async def timescale_installed(conn: asyncpg.Connection) -> bool:
    """Whether the TimescaleDB extension is installed in this database (not merely available)."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"))


def timescale_conversion_statements() -> list[str]:
    """Turn the plain ``track_points`` table into a compressed hypertable, keeping its rows."""
    return [
        "CREATE EXTENSION IF NOT EXISTS timescaledb",
        "SELECT create_hypertable('track_points', 'time', chunk_time_interval => INTERVAL '1 day', "
        "migrate_data => true, if_not_exists => true)",
        "ALTER TABLE track_points SET (timescaledb.compress, "
        "timescaledb.compress_segmentby = 'environment_id, task_id', timescaledb.compress_orderby = 'time')",
        INDEXES[2],
    ]


def timescale_policy_statements(retention_days: int, compress_after_days: int) -> list[str]:
    """Replace the policies, so a changed setting takes effect at the next start (0: none)."""
    out = [
        "SELECT remove_compression_policy('track_points', if_exists => true)",
        "SELECT remove_retention_policy('track_points', if_exists => true)",
    ]
    if compress_after_days > 0:
        out.append(f"SELECT add_compression_policy('track_points', INTERVAL '{int(compress_after_days)} days')")
    if retention_days > 0:
        out.append(f"SELECT add_retention_policy('track_points', INTERVAL '{int(retention_days)} days')")
    return out


async def convert_track_points(conn: asyncpg.Connection) -> None:
    """Migration 0003's hook: partition ``track_points`` the best way this server allows."""
    if await timescale_ready(conn):
        for statement in timescale_conversion_statements():
            await conn.execute(statement)
    else:
        await _partition_by_day(conn, _today())


async def _partition_by_day(conn: asyncpg.Connection, today: dt.date) -> None:
    await conn.execute(
        f"""DROP INDEX IF EXISTS track_points_task_idx;
            DROP INDEX IF EXISTS track_points_identity_idx;
            ALTER TABLE track_points RENAME TO track_points_unpartitioned;
            CREATE TABLE track_points (LIKE track_points_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
                PARTITION BY RANGE (time);
            CREATE TABLE {DEFAULT_PARTITION} PARTITION OF track_points DEFAULT;
            {";".join(INDEXES)}"""
    )
    rows = await conn.fetch("SELECT DISTINCT (time AT TIME ZONE 'UTC')::date AS day FROM track_points_unpartitioned")
    for day in sorted({r["day"] for r in rows} | _window(today)):
        await _create_day(conn, day)
    await conn.execute("INSERT INTO track_points SELECT * FROM track_points_unpartitioned")
    await conn.execute("DROP TABLE track_points_unpartitioned")


async def maintain(
    conn: asyncpg.Connection,
    *,
    retention_days: int,
    compress_after_days: int,
    today: dt.date | None = None,
) -> MaintenanceReport:
    """Keep partitions (or TimescaleDB policies) in step with the calendar and the settings.

    ``retention_days`` > 0 drops track points, events and identities older than that many
    days; 0 keeps everything. Safe to run from several replicas at once.
    """
    today = today or _today()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        kind = await conn.fetchval("SELECT relkind::text FROM pg_class WHERE oid = to_regclass('track_points')")
        if kind == "p":
            report = await _maintain_partitions(conn, today, retention_days)
        elif await timescale_installed(conn):
            for statement in timescale_policy_statements(retention_days, compress_after_days):
                await conn.execute(statement)
            report = MaintenanceReport("timescaledb")
        else:
            report = MaintenanceReport("none")
        if retention_days > 0:
            cutoff = _start_of(today - dt.timedelta(days=retention_days))
            await conn.execute("DELETE FROM events WHERE time < $1", cutoff)
            await conn.execute("DELETE FROM identities WHERE last_seen < $1", cutoff)
    if report.created or report.dropped:
        log.info("track_points partitions: created %s, dropped %s", list(report.created), list(report.dropped))
    return report


async def partition_days(conn: asyncpg.Connection) -> list[dt.date]:
    """The days that have a partition, in order."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('track_points')"
    )
    days = [m.group(1) for r in rows if (m := _PARTITION.match(r["relname"]))]
    return sorted(dt.datetime.strptime(d, "%Y%m%d").date() for d in days)


async def _maintain_partitions(conn: asyncpg.Connection, today: dt.date, retention_days: int) -> MaintenanceReport:
    existing = set(await partition_days(conn))
    oldest_kept = today - dt.timedelta(days=retention_days) if retention_days > 0 else dt.date.min
    if retention_days > 0:
        await conn.execute(f"DELETE FROM {DEFAULT_PARTITION} WHERE time < $1", _start_of(oldest_kept))
    # Rows in the default partition get their day now, so the default stays small.
    stray = await conn.fetch(f"SELECT DISTINCT (time AT TIME ZONE 'UTC')::date AS day FROM {DEFAULT_PARTITION}")
    wanted = {d for d in _window(today) | {r["day"] for r in stray} if d >= oldest_kept}
    created = [await _create_day(conn, day) for day in sorted(wanted - existing)]
    dropped = []
    for day in sorted(d for d in existing if d < oldest_kept):
        await conn.execute(f"DROP TABLE {_name(day)}")
        dropped.append(_name(day))
    return MaintenanceReport("partitions", tuple(created), tuple(dropped))


async def _create_day(conn: asyncpg.Connection, day: dt.date) -> str:
    """Create ``day``'s partition, taking over the default partition's rows of that day.

    Created apart and attached, because a plain CREATE ... PARTITION OF fails while the
    default partition holds rows of the new range.
    """
    name, lo, hi = _name(day), _start_of(day), _start_of(day + dt.timedelta(days=1))
    await conn.execute(f"CREATE TABLE {name} (LIKE track_points INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    await conn.execute(
        f"""WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE time >= $1 AND time < $2 RETURNING *)
            INSERT INTO {name} SELECT * FROM moved""",
        lo,
        hi,
    )
    await conn.execute(
        f"ALTER TABLE track_points ATTACH PARTITION {name} FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
    )
    return name


def _name(day: dt.date) -> str:
    return f"track_points_p{day:%Y%m%d}"


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _window(today: dt.date) -> set[dt.date]:
    return {today + dt.timedelta(days=k) for k in range(AHEAD_DAYS + 1)}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
