"""Events and identities reach PostgreSQL off the frame path, widened and retried, not lost."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import asyncpg
import pytest

from spoton_inference.pipeline.history import event_key
from spoton_inference.storage.history_writer import HistoryWriter
from spoton_inference.storage.postgres import Database

T0 = dt.datetime(2025, 5, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
async def db(postgres):
    database = await Database.connect(postgres.dsn)
    yield database
    await database.close()


def _identity(task: uuid.UUID, gid: int, first_s: float, last_s: float, camera: str) -> tuple:
    return (task, "env", gid, T0 + dt.timedelta(seconds=first_s), T0 + dt.timedelta(seconds=last_s), camera)


def _event(task: uuid.UUID, kind: str, frame: int) -> tuple:
    payload = json.dumps({"zone_id": "door"})
    key = event_key(kind, "c1", 3, frame, "door")
    return (T0 + dt.timedelta(seconds=frame / 10), task, "env", "c1", 3, kind, frame, payload, key)


async def test_events_and_identities_are_written_and_identities_widen(db):
    task = uuid.uuid4()
    writer = HistoryWriter(db)
    writer.add_identities([_identity(task, 3, 5, 9, "c1")])
    writer.add_identities([_identity(task, 3, 6, 12, "c2"), _identity(task, 4, 1, 2, "c1")])
    writer.add_events([_event(task, "zone_enter", 10), _event(task, "zone_exit", 40)])
    await writer.flush()
    # Later rows never shrink what is stored.
    writer.add_identities([_identity(task, 3, 8, 10, "c3")])
    await writer.flush()

    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT global_id, first_seen, last_seen, last_camera_id FROM identities WHERE task_id = $1 "
            "ORDER BY global_id",
            task,
        )
        events = await conn.fetch(
            "SELECT kind, global_frame_index, payload FROM events WHERE task_id = $1 ORDER BY time", task
        )
    assert [tuple(r) for r in rows] == [
        (3, T0 + dt.timedelta(seconds=5), T0 + dt.timedelta(seconds=12), "c2"),
        (4, T0 + dt.timedelta(seconds=1), T0 + dt.timedelta(seconds=2), "c1"),
    ]
    assert [(e["kind"], e["global_frame_index"], json.loads(e["payload"])) for e in events] == [
        ("zone_enter", 10, {"zone_id": "door"}),
        ("zone_exit", 40, {"zone_id": "door"}),
    ]
    assert writer.counters.events_written == 2 and writer.counters.identities_written == 3


async def test_a_failed_write_is_kept_for_the_next_round(db, postgres):
    task = uuid.uuid4()
    writer = HistoryWriter(db, max_pending_events=3)
    writer.add_events([_event(task, "appear", f) for f in range(2)])
    writer.add_identities([_identity(task, 3, 0, 1, "c1")])
    await postgres.stop()  # the database goes away
    try:
        await writer.flush()
        assert writer.counters.failures == 1 and writer.counters.events_written == 0
        writer.add_events([_event(task, "leave", f) for f in range(2, 4)])  # over the bound: the oldest goes
        assert writer.counters.events_dropped == 1
    finally:
        await postgres.start()
    # The pool may hand out a connection that died with the server once; the next round has a new one.
    for _ in range(3):
        await writer.flush()
        if writer.counters.events_written:
            break
    async with db.pool.acquire() as conn:
        frames = await conn.fetch("SELECT global_frame_index FROM events WHERE task_id = $1 ORDER BY 1", task)
        identities = await conn.fetchval("SELECT count(*) FROM identities WHERE task_id = $1", task)
    assert [r[0] for r in frames] == [1, 2, 3] and identities == 1


async def test_an_event_written_twice_is_stored_once(db):
    """A retry after a lost commit acknowledgement, or a resumed task, hands the same events
    over again: what is stored is each event once, and the repeat is counted, not written."""
    task = uuid.uuid4()
    writer = HistoryWriter(db)
    first = [_event(task, "appear", 1), _event(task, "zone_enter", 5)]
    writer.add_events(first)
    await writer.flush()
    writer.add_events([*first, _event(task, "leave", 9)])
    await writer.flush()
    async with db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT kind, global_frame_index FROM events WHERE task_id = $1 ORDER BY 2", task)
    assert [tuple(r) for r in rows] == [("appear", 1), ("zone_enter", 5), ("leave", 9)]
    assert writer.counters.events_written == 3 and writer.counters.events_duplicate == 2


async def test_events_need_a_known_kind(db):
    async with db.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO events (time, environment_id, kind) VALUES (now(), 'env', 'teleport')")
