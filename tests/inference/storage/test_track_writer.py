import datetime as dt
import uuid

import pytest

from spoton_inference.storage.postgres import Database
from spoton_inference.storage.track_writer import TrackPointWriter


@pytest.fixture
async def db(postgres):
    database = await Database.connect(postgres.dsn)
    yield database
    await database.close()


def _rows(task: uuid.UUID, n: int) -> list[tuple]:
    now = dt.datetime.now(dt.UTC)
    return [(now, task, "env", "c1", i, 1, 1, 0.0, 0.0, 10.0, 20.0, 0.9, 1.0, 2.0) for i in range(n)]


async def test_every_row_is_written_in_batches(db):
    task = uuid.uuid4()
    writer = TrackPointWriter(db.copy_track_points, batch_size=100)
    writer.start()
    for _ in range(5):
        writer.add(_rows(task, 70))
    await writer.close()
    assert await db.count_track_points(str(task)) == 350
    assert writer.counters.written == 350 and writer.counters.lost == 0


async def test_failed_writes_are_retried_not_lost(db):
    task = uuid.uuid4()
    failures = {"left": 2}

    async def flaky(rows):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database went away")
        await db.copy_track_points(rows)

    writer = TrackPointWriter(flaky, batch_size=50)
    writer.start()
    writer.add(_rows(task, 120))
    await writer.close()
    assert await db.count_track_points(str(task)) == 120
    assert writer.counters.retries == 2 and writer.counters.lost == 0
