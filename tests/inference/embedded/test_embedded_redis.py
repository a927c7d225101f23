"""EmbeddedRedis: streams work on 127.0.0.1 and survive a stop and start (AOF)."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
import redis.exceptions

from spoton_inference.embedded.pids import pid_alive
from spoton_inference.embedded.ports import port_is_free
from spoton_inference.embedded.redis import EmbeddedRedis
from spoton_inference.embedded.supervisor import ChildState
from spoton_inference.settings import Settings


@pytest_asyncio.fixture(scope="module")
async def redis_server(make_data_dir: Callable[[str], Path]) -> AsyncIterator[EmbeddedRedis]:
    server = EmbeddedRedis(Settings(data_dir=make_data_dir("redis")))
    await server.start()
    yield server
    await server.stop()


async def test_xadd_and_xrange(redis_server: EmbeddedRedis) -> None:
    password = (redis_server.settings.data_dir / "secrets" / "redis_password").read_text().strip()
    assert redis_server.url == f"redis://:{password}@127.0.0.1:{redis_server.port}/0"
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        first = await client.xadd("events:t1", {"kind": "started"})
        second = await client.xadd("events:t1", {"kind": "frame", "n": "1"})
        entries = await client.xrange("events:t1")
        assert [entry_id for entry_id, _ in entries] == [first, second]
        assert entries[1][1] == {b"kind": b"frame", b"n": b"1"}
    finally:
        await client.aclose()


async def test_clients_need_the_generated_password(redis_server: EmbeddedRedis) -> None:
    secret = redis_server.settings.data_dir / "secrets" / "redis_password"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((redis_server.root / "redis.conf").stat().st_mode) == 0o600
    client = aioredis.Redis(host="127.0.0.1", port=redis_server.port)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            await client.ping()
    finally:
        await client.aclose()


async def test_stream_survives_stop_and_start(redis_server: EmbeddedRedis) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        entry_id = await client.xadd("events:t2", {"kind": "persisted"})
    finally:
        await client.aclose()
    pid = redis_server.pid
    assert pid is not None

    await redis_server.stop()
    assert not pid_alive(pid)
    assert port_is_free(redis_server.port)
    assert redis_server.status().state is ChildState.STOPPED

    await redis_server.start()
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        assert await client.xrange("events:t2") == [(entry_id, {b"kind": b"persisted"})]
    finally:
        await client.aclose()


async def test_server_left_running_on_the_data_dir_is_replaced(redis_server: EmbeddedRedis) -> None:
    stale_pid = redis_server.pid
    assert stale_pid is not None
    # Same data dir, hence same pidfile: as if a crashed run had left it behind.
    replacement = EmbeddedRedis(redis_server.settings)
    await replacement.start()
    try:
        assert not pid_alive(stale_pid)
        client = aioredis.Redis.from_url(replacement.url)
        try:
            assert await client.xlen("events:t2") == 1
        finally:
            await client.aclose()
    finally:
        await replacement.stop()
