"""Task-state writes go on through a PostgreSQL outage: nothing raises, the newest state wins."""

import asyncio
import time

import pytest

from spoton_inference.domain.events import TaskState
from spoton_inference.storage.postgres import Database
from spoton_inference.storage.task_states import TaskStateUpdate, TaskStateWriter
from spoton_inference.storage.task_store import TaskStore


@pytest.fixture
async def db(stoppable_postgres):
    database = await Database.connect(stoppable_postgres.dsn)
    yield database
    await database.close()


def _writer(db: Database) -> TaskStateWriter:
    return TaskStateWriter(
        lambda u: TaskStore(db).update_task(
            u.task_id,
            state=u.state,
            progress=u.progress,
            step=u.step,
            frames_processed=u.frames_processed,
            error=u.error,
        )
    )


async def _history(db: Database, task_id: str) -> list[str]:
    async with db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT state FROM task_state_history WHERE task_id = $1::uuid ORDER BY at", task_id)
    return [r["state"] for r in rows]


async def test_a_write_while_postgres_answers_is_visible_at_once(db):
    record = await TaskStore(db).insert_task("env", ["c1"], 10, concurrent=True)  # beside other tests' rows
    writer = _writer(db)
    await writer.write(TaskStateUpdate(record.task_id, TaskState.PROCESSING, 0.3, "batch 1", 3))
    stored = await TaskStore(db).get_task(record.task_id)
    assert (stored.state, stored.frames_processed) == (TaskState.PROCESSING, 3)
    await writer.close()


async def test_states_written_during_an_outage_land_once_it_ends_newest_last(db, postgres_down):
    record = await TaskStore(db).insert_task("env", ["c1"], 10, concurrent=True)
    writer = _writer(db)
    async with postgres_down():
        for frame in range(1, 10):
            await writer.write(TaskStateUpdate(record.task_id, TaskState.PROCESSING, frame / 10, "batch 1", frame))
        await writer.write(TaskStateUpdate(record.task_id, TaskState.COMPLETED, 1.0, "completed", 10))
    deadline = time.monotonic() + 30
    while (stored := await TaskStore(db).get_task(record.task_id)).state is not TaskState.COMPLETED:
        assert time.monotonic() < deadline, f"still {stored.state} after PostgreSQL came back"
        await asyncio.sleep(0.05)
    assert (stored.progress, stored.step, stored.frames_processed) == (1.0, "completed", 10)
    # Progress in between coalesced: the record went from queued straight to its newest state.
    assert await _history(db, record.task_id) == ["queued", "completed"]
    await writer.close()


async def test_a_task_that_has_ended_stays_as_it_ended(db):
    """A replica cut off from Redis may still run a task another replica has failed over: its
    later writes must not bring the task back to life."""
    store = TaskStore(db)
    task = await store.insert_task("ended", ["c1"], 10)
    assert await store.fail_unfinished_tasks("replica r1 stopped", [task.task_id]) == [task.task_id]
    await store.update_task(task.task_id, state=TaskState.PROCESSING, progress=0.5, step="batch 2", frames_processed=5)
    await store.update_task(task.task_id, state=TaskState.COMPLETED, progress=1.0, step="done", frames_processed=10)
    record = await store.get_task(task.task_id)
    assert (record.state, record.error, record.frames_processed) == (TaskState.FAILED, "replica r1 stopped", 0)
    assert await _history(db, task.task_id) == ["queued", "failed"]
