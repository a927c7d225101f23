"""EmbeddedPostgres: TCP on 127.0.0.1, database spoton with pgvector, restarts keep data."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from spoton_inference.embedded.pids import pid_alive
from spoton_inference.embedded.ports import port_is_free
from spoton_inference.embedded.postgres import EmbeddedPostgres
from spoton_inference.embedded.supervisor import ChildState
from spoton_inference.settings import Settings


@pytest_asyncio.fixture(scope="module")
async def postgres(make_data_dir: Callable[[str], Path]) -> AsyncIterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(Settings(data_dir=make_data_dir("postgres")))
    await server.start()
    yield server
    await server.stop()


async def insert_and_count(dsn: str, label: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS marks (label text, embedding vector(3))")
        await conn.execute("INSERT INTO marks VALUES ($1, '[1,2,3]')", label)
        return await conn.fetchval("SELECT count(*) FROM marks WHERE label = $1", label)
    finally:
        await conn.close()


async def count(dsn: str, label: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM marks WHERE label = $1", label)
    finally:
        await conn.close()


async def test_accepts_asyncpg_over_tcp_with_vector(postgres: EmbeddedPostgres) -> None:
    password = (postgres.settings.data_dir / "secrets" / "postgres_password").read_text().strip()
    assert postgres.dsn == f"postgresql://postgres:{password}@127.0.0.1:{postgres.port}/spoton"
    conn = await asyncpg.connect(postgres.dsn)
    try:
        # NULL over a unix socket; the address proves TCP on loopback.
        assert await conn.fetchval("SELECT host(inet_server_addr())") == "127.0.0.1"
        assert await conn.fetchval("SELECT current_database()") == "spoton"
        assert await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert await conn.fetchval("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector") == 2.0
    finally:
        await conn.close()


async def test_connections_need_the_generated_password(postgres: EmbeddedPostgres) -> None:
    secret = postgres.settings.data_dir / "secrets" / "postgres_password"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    for wrong in (
        f"postgresql://postgres@127.0.0.1:{postgres.port}/spoton",
        postgres.dsn.replace("postgres:", "postgres:x"),
    ):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(wrong)


async def test_stop_then_start_keeps_data_and_dsn(postgres: EmbeddedPostgres) -> None:
    assert await insert_and_count(postgres.dsn, "before-stop") == 1
    dsn, pid = postgres.dsn, postgres.pid
    assert pid is not None

    await postgres.stop()
    assert not pid_alive(pid)
    assert port_is_free(postgres.port)
    assert postgres.status().state is ChildState.STOPPED

    await postgres.start()
    assert postgres.dsn == dsn
    assert await count(dsn, "before-stop") == 1


async def test_restarts_after_the_postmaster_was_killed(postgres: EmbeddedPostgres) -> None:
    assert await insert_and_count(postgres.dsn, "before-kill") == 1
    pid = postgres.pid
    assert pid is not None

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while postgres.status().state is not ChildState.FAILED:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert postgres.status().reason == "was killed by SIGKILL"
    assert (postgres.pgdata / "postmaster.pid").exists()

    await postgres.start()
    assert postgres.status().state is ChildState.HEALTHY
    assert await count(postgres.dsn, "before-kill") == 1


async def test_stale_lock_naming_an_unrelated_live_process_is_cleared(
    postgres: EmbeddedPostgres,
) -> None:
    await postgres.stop()
    # PostgreSQL itself refuses to start while the PID in its lock file is alive.
    (postgres.pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{postgres.pgdata}\n")
    await postgres.start()
    assert postgres.status().state is ChildState.HEALTHY


async def test_server_left_running_on_the_data_dir_is_replaced(postgres: EmbeddedPostgres) -> None:
    stale_pid = postgres.pid
    assert stale_pid is not None
    # Same pgdata: its postmaster.pid names the still-running server, as after a crash.
    replacement = EmbeddedPostgres(postgres.settings)
    await replacement.start()
    try:
        assert not pid_alive(stale_pid)
        assert await count(replacement.dsn, "before-kill") == 1
    finally:
        await replacement.stop()
