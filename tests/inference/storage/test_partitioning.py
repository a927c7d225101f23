"""Track-point partitions follow the calendar, and the TimescaleDB path issues the right statements."""

import datetime as dt
import uuid

import asyncpg
import pytest

from spoton_inference.storage.migrate import migrate
from spoton_inference.storage.partitioning import (
    AHEAD_DAYS,
    DEFAULT_PARTITION,
    TIMESCALE_READY_SQL,
    convert_track_points,
    maintain,
    partition_days,
    timescale_policy_statements,
)
from spoton_inference.storage.task_store import TRACK_POINT_COLUMNS

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture
async def conn(postgres):
    name = f"parts_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.dsn_for("postgres"))
    await admin.execute(f"CREATE DATABASE {name}")
    connection = await asyncpg.connect(postgres.dsn_for(name))
    await migrate(connection)
    yield connection
    await connection.close()
    await admin.execute(f"DROP DATABASE {name}")
    await admin.close()


def _at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


async def _insert(conn, *times: dt.datetime) -> None:
    rows = [(t, uuid.uuid4(), "env", "c1", i, 1, 1, 0.0, 0.0, 1.0, 1.0, 0.5, 0.0, 0.0) for i, t in enumerate(times)]
    await conn.copy_records_to_table("track_points", records=rows, columns=TRACK_POINT_COLUMNS)


async def test_maintenance_keeps_days_ahead_and_is_idempotent(conn):
    later = TODAY + dt.timedelta(days=3)
    report = await maintain(conn, retention_days=30, compress_after_days=7, today=later)
    assert report.layout == "partitions"
    ahead = [later + dt.timedelta(days=k) for k in range(AHEAD_DAYS + 1)]
    assert [d for d in await partition_days(conn) if d >= later] == ahead
    again = await maintain(conn, retention_days=30, compress_after_days=7, today=later)
    assert again.created == () and again.dropped == ()


async def test_rows_in_the_default_partition_move_into_their_day(conn):
    stray = TODAY + dt.timedelta(days=AHEAD_DAYS + 5)
    await _insert(conn, _at(stray, 1), _at(stray, 23))
    assert await conn.fetchval(f"SELECT count(*) FROM {DEFAULT_PARTITION}") == 2
    report = await maintain(conn, retention_days=30, compress_after_days=7, today=TODAY)
    assert report.created == (f"track_points_p{stray:%Y%m%d}",)
    assert await conn.fetchval(f"SELECT count(*) FROM {DEFAULT_PARTITION}") == 0
    assert await conn.fetchval(f"SELECT count(*) FROM track_points_p{stray:%Y%m%d}") == 2


async def test_days_past_retention_are_dropped_with_old_events_and_identities(conn):
    old, kept = TODAY - dt.timedelta(days=31), TODAY - dt.timedelta(days=29)
    await _insert(conn, _at(old), _at(kept))
    await maintain(conn, retention_days=0, compress_after_days=0)  # gives both days a partition
    assert {old, kept} <= set(await partition_days(conn))
    await conn.execute(
        "INSERT INTO events (time, environment_id, kind) VALUES ($1, 'env', 'appear'), ($2, 'env', 'leave')",
        _at(old),
        _at(kept),
    )
    await conn.execute(
        "INSERT INTO identities (task_id, environment_id, global_id, first_seen, last_seen) "
        "VALUES ($1, 'env', 1, $2, $2), ($1, 'env', 2, $3, $3)",
        uuid.uuid4(),
        _at(old),
        _at(kept),
    )
    report = await maintain(conn, retention_days=30, compress_after_days=7, today=TODAY)
    assert report.dropped == (f"track_points_p{old:%Y%m%d}",)
    assert [r["time"] for r in await conn.fetch("SELECT time FROM track_points")] == [_at(kept)]
    assert await conn.fetchval("SELECT array_agg(kind) FROM events") == ["leave"]
    assert await conn.fetchval("SELECT array_agg(global_id) FROM identities") == [2]


class RecordingConnection:
    """Answers as a server with TimescaleDB would, and records the statements it is sent."""

    def __init__(self, relkind: str = "r") -> None:
        self.statements: list[str] = []
        self._relkind = relkind

    async def fetchval(self, sql: str, *args: object) -> object:
        if sql == TIMESCALE_READY_SQL:
            return True
        if "relkind" in sql:
            return self._relkind
        if "pg_extension" in sql and "timescaledb" in sql:
            return True
        raise AssertionError(f"unexpected query {sql!r}")

    async def execute(self, sql: str, *args: object) -> str:
        self.statements.append(" ".join(sql.split()))
        return "OK"

    def transaction(self):
        return _NoTransaction()


class _NoTransaction:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


async def test_with_timescaledb_the_table_becomes_a_compressed_hypertable():
    conn = RecordingConnection()
    await convert_track_points(conn)
    assert conn.statements[0] == "CREATE EXTENSION IF NOT EXISTS timescaledb"
    hypertable = conn.statements[1]
    assert hypertable.startswith("SELECT create_hypertable('track_points', 'time'")
    assert "migrate_data => true" in hypertable and "INTERVAL '1 day'" in hypertable
    compress = conn.statements[2]
    assert "timescaledb.compress," in compress and "compress_segmentby = 'environment_id, task_id'" in compress
    assert not any("PARTITION" in s for s in conn.statements)


async def test_with_timescaledb_maintenance_sets_compression_and_retention_policies():
    conn = RecordingConnection()
    report = await maintain(conn, retention_days=30, compress_after_days=7, today=TODAY)
    assert report.layout == "timescaledb"
    policies = [s for s in conn.statements if "policy" in s]
    assert policies == [
        "SELECT remove_compression_policy('track_points', if_exists => true)",
        "SELECT remove_retention_policy('track_points', if_exists => true)",
        "SELECT add_compression_policy('track_points', INTERVAL '7 days')",
        "SELECT add_retention_policy('track_points', INTERVAL '30 days')",
    ]
    assert any(s.startswith("DELETE FROM events WHERE time <") for s in conn.statements)


def test_a_zero_setting_removes_the_policy_for_good():
    assert timescale_policy_statements(0, 0) == [
        "SELECT remove_compression_policy('track_points', if_exists => true)",
        "SELECT remove_retention_policy('track_points', if_exists => true)",
    ]
