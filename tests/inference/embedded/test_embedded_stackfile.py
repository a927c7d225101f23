"""stack.json: atomic write, read back, liveness, removal only by its owner."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from spoton_inference.embedded.endpoints import StackEndpoints
from spoton_inference.embedded.ports import pick_free_port
from spoton_inference.embedded.stackfile import (
    find_live_stack,
    read_stack_file,
    remove_stack_file,
    write_stack_file,
)


@pytest_asyncio.fixture
async def listening_endpoints() -> AsyncIterator[StackEndpoints]:
    """Endpoints that all point at one live TCP listener."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield StackEndpoints(
        facade_url=f"http://127.0.0.1:{port}",
        grpc_target=f"127.0.0.1:{port}",
        triton_grpc_url=f"127.0.0.1:{port}",
        triton_http_url=f"http://127.0.0.1:{port}",
        postgres_dsn=f"postgresql://postgres@127.0.0.1:{port}/spoton",
        redis_url=f"redis://127.0.0.1:{port}/0",
    )
    server.close()
    await server.wait_closed()


async def test_written_file_reads_back_and_is_live(tmp_path: Path, listening_endpoints: StackEndpoints) -> None:
    path = tmp_path / "var" / "stack.json"
    record = write_stack_file(listening_endpoints, path)
    assert read_stack_file(path) == record
    assert record.pid == os.getpid()
    assert [p.name for p in path.parent.iterdir()] == ["stack.json"], "no temporary left behind"
    assert await find_live_stack(path) == listening_endpoints

    remove_stack_file(path)
    assert not path.exists()
    assert await find_live_stack(path) is None


async def test_not_live_when_an_endpoint_is_down(tmp_path: Path, listening_endpoints: StackEndpoints) -> None:
    path = tmp_path / "stack.json"
    down = f"http://127.0.0.1:{pick_free_port()}"
    write_stack_file(dataclasses.replace(listening_endpoints, facade_url=down), path)
    assert await find_live_stack(path) is None


async def test_not_live_when_the_owner_is_dead(tmp_path: Path, listening_endpoints: StackEndpoints) -> None:
    path = tmp_path / "stack.json"
    proc = await asyncio.create_subprocess_exec("true")
    await proc.wait()
    write_stack_file(listening_endpoints, path)
    _set_owner(path, proc.pid)
    assert await find_live_stack(path) is None


async def test_another_owners_file_is_not_removed(tmp_path: Path, listening_endpoints: StackEndpoints) -> None:
    path = tmp_path / "stack.json"
    write_stack_file(listening_endpoints, path)
    _set_owner(path, 1)
    remove_stack_file(path)
    assert path.exists()


def test_malformed_file_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text("{not json")
    assert read_stack_file(path) is None


def _set_owner(path: Path, pid: int) -> None:
    raw = json.loads(path.read_text())
    raw["pid"] = pid
    path.write_text(json.dumps(raw))
