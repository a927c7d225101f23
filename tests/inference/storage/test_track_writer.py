"""The track-point writer against a real PostgreSQL, including one that is stopped and started
again (same data directory and port) while rows keep coming."""

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable

import pytest

from spoton_inference.app import InferenceApp
from spoton_inference.settings import Settings
from spoton_inference.storage.journal import Batch, Journal
from spoton_inference.storage.postgres import Database
from spoton_inference.storage.task_store import TaskStore
from spoton_inference.storage.track_writer import JOURNAL_FILE, TrackPointWriter


@pytest.fixture
async def db(stoppable_postgres):
    database = await Database.connect(stoppable_postgres.dsn)
    yield database
    await database.close()


@pytest.fixture
def journal_path(tmp_path):
    return tmp_path / "journal" / "track_points.journal"


async def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _rows(task: uuid.UUID, n: int, start: int = 0) -> list[tuple]:
    """Rows whose global_frame_index numbers them in the order they were added."""
    now = dt.datetime.now(dt.UTC)
    return [(now, task, "env", "c1", i, 1, 1, 0.0, 0.0, 10.0, 20.0, 0.9, 1.0, 2.0) for i in range(start, start + n)]


async def _writer(db: Database, journal_path, **kwargs) -> TrackPointWriter:
    max_bytes = kwargs.pop("journal_max_bytes", 1 << 30)
    writer = TrackPointWriter(TaskStore(db).write_track_point_batch, Journal(journal_path, max_bytes), **kwargs)
    await writer.start()
    return writer


async def _frame_indexes_in_commit_order(db: Database, task: uuid.UUID) -> list[int]:
    """Each batch is one transaction: ordering by its transaction id gives the write order."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT global_frame_index FROM track_points WHERE task_id = $1 "
            "ORDER BY xmin::text::bigint, global_frame_index",
            task,
        )
    return [r["global_frame_index"] for r in rows]


async def test_every_row_is_written_once_in_batches(db, journal_path):
    task = uuid.uuid4()
    writer = await _writer(db, journal_path, batch_size=100)
    for k in range(5):
        writer.add(_rows(task, 70, start=70 * k))
    await writer.close()
    assert await _frame_indexes_in_commit_order(db, task) == list(range(350))
    assert writer.counters.as_dict == {
        "written": 350,
        "replayed": 0,
        "spilled": 0,
        "duplicates_skipped": 0,
        "lost": 0,
        "retries": 0,
    }


async def test_failed_writes_are_retried_not_lost(db, journal_path):
    task = uuid.uuid4()
    failures = {"left": 2}

    async def flaky(batch_id, rows):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database went away")
        return await TaskStore(db).write_track_point_batch(batch_id, rows)

    writer = TrackPointWriter(flaky, Journal(journal_path, 1 << 30), batch_size=50)
    await writer.start()
    writer.add(_rows(task, 120))
    await writer.close()
    assert await TaskStore(db).count_track_points(str(task)) == 120
    assert writer.counters.retries == 2 and writer.counters.lost == 0


async def test_the_ledger_refuses_a_batch_id_it_already_holds(db):
    task, batch_id = uuid.uuid4(), uuid.uuid4()
    assert await TaskStore(db).write_track_point_batch(batch_id, _rows(task, 30)) is True
    assert await TaskStore(db).write_track_point_batch(batch_id, _rows(task, 30)) is False
    assert await TaskStore(db).count_track_points(str(task)) == 30


async def test_a_batch_whose_acknowledgement_was_lost_is_not_written_twice(db, journal_path):
    task = uuid.uuid4()
    lost_acks = {"left": 1}

    async def commit_then_lose_the_ack(batch_id, rows):
        written = await TaskStore(db).write_track_point_batch(batch_id, rows)
        if lost_acks["left"]:
            lost_acks["left"] -= 1
            raise ConnectionResetError("connection reset after COMMIT")
        return written

    writer = TrackPointWriter(commit_then_lose_the_ack, Journal(journal_path, 1 << 30), batch_size=40)
    await writer.start()
    writer.add(_rows(task, 100))
    await writer.close()
    assert await _frame_indexes_in_commit_order(db, task) == list(range(100))
    c = writer.counters
    assert (c.written, c.duplicates_skipped, c.retries, c.lost) == (60, 40, 1, 0)


async def test_an_outage_buffers_to_the_bound_spills_the_rest_and_replays_in_order(db, journal_path, postgres_down):
    task = uuid.uuid4()
    writer = await _writer(db, journal_path, batch_size=100, buffer_rows=300)
    async with postgres_down():
        for k in range(10):
            writer.add(_rows(task, 100, start=100 * k))
        await until(lambda: writer.counters.spilled == 700)
        assert (writer.buffered, writer.journaled, writer.available) == (300, 700, False)
        assert journal_path.stat().st_size == writer.journal_bytes > 0
    await writer.drain()
    assert await _frame_indexes_in_commit_order(db, task) == list(range(1000))
    c = writer.counters
    assert (c.written, c.replayed, c.spilled, c.duplicates_skipped, c.lost) == (1000, 700, 700, 0, 0)
    assert (writer.buffered, writer.journaled, writer.available) == (0, 0, True)
    assert journal_path.stat().st_size == 0
    await writer.close()


async def test_flush_returns_during_an_outage_once_the_rows_are_in_the_journal(db, journal_path, postgres_down):
    """A task can end while PostgreSQL is away: its rows are durable locally, written later."""
    task = uuid.uuid4()
    writer = await _writer(db, journal_path, batch_size=100, buffer_rows=10_000)
    async with postgres_down():
        writer.add(_rows(task, 250))
        await writer.flush()
        assert (writer.buffered, writer.journaled) == (0, 250)
    await writer.drain()
    assert await TaskStore(db).count_track_points(str(task)) == 250
    await writer.close()


async def test_a_restarted_service_replays_the_journal_left_behind(db, journal_path, postgres_down):
    task = uuid.uuid4()
    async with postgres_down():
        before = await _writer(db, journal_path, batch_size=100)
        before.add(_rows(task, 420))
        await before.close(timeout_s=0.5)  # cannot write: everything goes to the journal
        assert before.counters.spilled == 420 and before.counters.lost == 0
    assert await TaskStore(db).count_track_points(str(task)) == 0

    after = await _writer(db, journal_path, batch_size=100)
    await after.drain()
    assert await _frame_indexes_in_commit_order(db, task) == list(range(420))
    assert (after.counters.replayed, after.counters.written, after.journaled) == (420, 420, 0)
    await after.close()


async def test_a_journaled_batch_already_committed_is_skipped_on_replay(db, journal_path):
    """The process died after COMMIT but before acknowledging the journal record."""
    task = uuid.uuid4()
    committed = Batch(uuid.uuid4(), _rows(task, 80))
    assert await TaskStore(db).write_track_point_batch(committed.batch_id, committed.rows)
    journal = Journal(journal_path, 1 << 30)
    journal.open()
    journal.append(committed)
    journal.append(Batch(uuid.uuid4(), _rows(task, 20, start=80)))
    journal.close()

    writer = await _writer(db, journal_path)
    await writer.drain()
    assert await _frame_indexes_in_commit_order(db, task) == list(range(100))
    c = writer.counters
    assert (c.written, c.replayed, c.duplicates_skipped) == (20, 20, 80)
    await writer.close()


async def test_past_memory_and_journal_bounds_rows_are_counted_lost_and_the_rest_written(
    db, journal_path, postgres_down
):
    task = uuid.uuid4()
    # Room for about two batches of 100 rows in the journal.
    writer = await _writer(db, journal_path, batch_size=100, buffer_rows=200, journal_max_bytes=12_000)
    async with postgres_down():
        for k in range(10):
            writer.add(_rows(task, 100, start=100 * k))
        await until(lambda: writer.counters.spilled + writer.counters.lost == 800)
        c = writer.counters
        assert writer.buffered == 200 and c.lost > 0 and c.spilled > 0
        assert c.lost + c.spilled + writer.buffered == 1000
    await writer.drain()
    assert await TaskStore(db).count_track_points(str(task)) == 1000 - writer.counters.lost
    await writer.close()


async def test_the_service_replays_a_journal_left_behind_when_it_starts(
    stoppable_postgres, postgres_down, redis_server, make_data_dir
):
    settings = Settings(
        data_dir=make_data_dir("app-journal"), postgres_dsn=stoppable_postgres.dsn, redis_url=redis_server.url
    )
    task = uuid.uuid4()
    left = Journal(settings.data_dir / JOURNAL_FILE, 1 << 30)
    left.open()
    left.append(Batch(uuid.uuid4(), _rows(task, 60)))
    left.close()

    app = await InferenceApp.create(settings)
    try:
        await app.writer.drain()
        assert await TaskStore(app.db).count_track_points(str(task)) == 60
        assert app.writer.counters.replayed == 60
        async with postgres_down():
            postgres = {c.name: c for c in (await app.health()).components}["postgres"]
            assert postgres.status == "degraded"
            assert "unreachable" in postgres.detail and "SPOTON_POSTGRES_DSN" in postgres.detail
    finally:
        await app.close()


async def test_a_batch_postgres_rejects_is_counted_lost_and_does_not_block_the_next(db, journal_path):
    task = uuid.uuid4()
    writer = await _writer(db, journal_path, batch_size=10)
    bad = [(*row[:3], None, *row[4:]) for row in _rows(task, 10)]  # camera_id is NOT NULL
    writer.add(bad)
    writer.add(_rows(task, 10, start=10))
    await writer.close()
    assert await _frame_indexes_in_commit_order(db, task) == list(range(10, 20))
    assert (writer.counters.lost, writer.counters.written) == (10, 10)
