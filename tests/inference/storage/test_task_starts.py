"""One unfinished task per environment, held by PostgreSQL itself: starts racing from two
connection pools (as two replicas would) leave exactly one task, and migration 0013 marks the
environments of existing jobs as theirs."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from spoton_inference.domain.events import TaskState
from spoton_inference.storage.migrate import MIGRATIONS_DIR, available_migrations, migrate
from spoton_inference.storage.postgres import Database, EnvironmentBusy
from spoton_inference.storage.task_store import TaskStore

RACERS = 12
# The last version before environments had an origin.
BEFORE_ORIGIN = 12


@pytest_asyncio.fixture
async def database_dsn(postgres) -> AsyncIterator[str]:
    """The DSN of a new, empty database, dropped afterwards."""
    name = f"starts_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.dsn_for("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    yield postgres.dsn_for(name)
    admin = await asyncpg.connect(postgres.dsn_for("postgres"))
    try:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest_asyncio.fixture
async def replicas(database_dsn) -> AsyncIterator[tuple[TaskStore, TaskStore]]:
    """Two pools on one database, as two replicas of the service hold."""
    a = await Database.connect(database_dsn, max_size=RACERS)
    b = await Database.connect(database_dsn, max_size=RACERS)
    yield TaskStore(a), TaskStore(b)
    await a.close()
    await b.close()


async def test_of_starts_racing_from_two_replicas_one_wins(replicas) -> None:
    a, b = replicas
    starts = [(a if i % 2 else b).insert_task("hall", ["c1"], 10) for i in range(RACERS)]
    answers = await asyncio.gather(*starts, return_exceptions=True)
    won = [x for x in answers if not isinstance(x, BaseException)]
    refused = [x for x in answers if isinstance(x, EnvironmentBusy)]
    assert len(won) == 1 and len(refused) == RACERS - 1, answers
    assert {r.running.task_id for r in refused} == {won[0].task_id}  # each refusal names the winner
    assert [t.task_id for t in await a.list_tasks(limit=50, environment_id="hall")] == [won[0].task_id]


async def test_allow_concurrent_starts_beside_and_an_ended_task_blocks_nothing(replicas) -> None:
    a, b = replicas
    first = await a.insert_task("yard", ["c1"], 10)
    beside = await b.insert_task("yard", ["c1"], 10, concurrent=True)
    other_site = await b.insert_task("lobby", ["c1"], 10)  # another environment is another matter
    with pytest.raises(EnvironmentBusy) as busy:
        await b.insert_task("yard", ["c1"], 10)
    assert busy.value.running.task_id == first.task_id  # the oldest unfinished one
    for record in (first, beside):
        await a.update_task(record.task_id, state=TaskState.CANCELLED, progress=0, step="cancelled", frames_processed=0)
    again = await b.insert_task("yard", ["c1"], 10)
    assert again.task_id not in (first.task_id, beside.task_id, other_site.task_id)
    await a.update_task(again.task_id, state=TaskState.PAUSED, progress=0, step="paused", frames_processed=0)
    with pytest.raises(EnvironmentBusy):  # paused is unfinished
        await a.insert_task("yard", ["c1"], 10)


async def test_the_environments_of_existing_jobs_become_job_environments(database_dsn, tmp_path) -> None:
    for version, _, path in available_migrations():
        if version <= BEFORE_ORIGIN:
            shutil.copy(path, tmp_path)
    conn = await asyncpg.connect(database_dsn)
    try:
        await migrate(conn, tmp_path)
        await conn.execute(
            "INSERT INTO environments (environment_id, name) VALUES ('lobby', 'Lobby'), ('job-1', 'upload.mp4')"
        )
        await conn.execute(
            """INSERT INTO jobs (job_id, name, filename, state, size_bytes, video, options, environment_id, camera_id)
               VALUES ($1, 'upload.mp4', 'upload.mp4', 'completed', 1, '{}', '{}', 'job-1', 'camera')""",
            uuid.uuid4(),
        )
        assert BEFORE_ORIGIN + 1 in await migrate(conn, MIGRATIONS_DIR)
        rows = await conn.fetch("SELECT environment_id, origin FROM environments ORDER BY environment_id")
        assert [tuple(r) for r in rows] == [("job-1", "job"), ("lobby", "site")]
    finally:
        await conn.close()
