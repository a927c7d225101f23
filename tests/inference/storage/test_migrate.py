import datetime as dt
import shutil
import uuid

import asyncpg
import pytest

from spoton_inference.storage.migrate import MIGRATIONS_DIR, available_migrations, migrate
from spoton_inference.storage.partitioning import DEFAULT_PARTITION, partition_days
from spoton_inference.storage.task_store import TRACK_POINT_COLUMNS


@pytest.fixture
async def fresh_db(postgres):
    """A connection to a new, empty database."""
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.dsn_for("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(postgres.dsn_for(name))
    yield conn
    await conn.close()
    admin = await asyncpg.connect(postgres.dsn_for("postgres"))
    try:
        await admin.execute(f"DROP DATABASE {name}")
    finally:
        await admin.close()


def _point(when: dt.datetime, frame: int) -> tuple:
    return (when, uuid.UUID(int=7), "env", "c1", frame, 1, 2, 0.0, 0.0, 10.0, 20.0, 0.5, 1.5, 2.5)


async def test_migrations_apply_once_and_are_idempotent(fresh_db):
    conn = fresh_db
    first = await migrate(conn)
    assert first == [v for v, _, _ in available_migrations()]
    assert await migrate(conn) == []
    tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"environments", "cameras", "tasks", "task_state_history", "identities", "events", "zones"} <= tables
    assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 1
    # No TimescaleDB here: declaratively partitioned by day, today and the days ahead ready.
    assert await conn.fetchval("SELECT relkind::text FROM pg_class WHERE relname = 'track_points'") == "p"
    today = dt.datetime.now(dt.UTC).date()
    assert today in await partition_days(conn)


async def test_an_insert_never_fails_for_lack_of_a_partition(fresh_db):
    conn = fresh_db
    await migrate(conn)
    far = [
        _point(dt.datetime(1999, 1, 1, tzinfo=dt.UTC), 0),
        _point(dt.datetime(2099, 12, 31, 23, 59, tzinfo=dt.UTC), 1),
        _point(dt.datetime.now(dt.UTC), 2),
    ]
    await conn.copy_records_to_table("track_points", records=far, columns=TRACK_POINT_COLUMNS)
    assert await conn.fetchval(f"SELECT count(*) FROM {DEFAULT_PARTITION}") == 2
    assert await conn.fetchval("SELECT count(*) FROM track_points") == 3


async def test_upgrading_from_the_first_version_keeps_the_data(fresh_db, tmp_path):
    conn = fresh_db
    shutil.copy(MIGRATIONS_DIR / "0001_initial.sql", tmp_path)
    assert await migrate(conn, tmp_path) == [1]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    points = [_point(now - dt.timedelta(days=d, minutes=m), 10 * d + m) for d in (0, 3, 40) for m in range(3)]
    await conn.copy_records_to_table("track_points", records=points, columns=TRACK_POINT_COLUMNS)
    await conn.execute("INSERT INTO environments (environment_id, name) VALUES ('env', 'Hall')")

    applied = await migrate(conn)
    assert applied == [v for v, _, _ in available_migrations()][1:]
    rows = await conn.fetch(f"SELECT {', '.join(TRACK_POINT_COLUMNS)} FROM track_points ORDER BY global_frame_index")
    assert [tuple(r) for r in rows] == sorted(points, key=lambda p: p[4])
    # Each old day got its partition; nothing was left in the default one.
    days = await partition_days(conn)
    assert {p[0].date() for p in points} <= set(days)
    assert await conn.fetchval(f"SELECT count(*) FROM {DEFAULT_PARTITION}") == 0
    assert await conn.fetchval("SELECT name FROM environments WHERE environment_id = 'env'") == "Hall"
    assert await migrate(conn) == []
