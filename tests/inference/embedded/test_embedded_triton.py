"""EmbeddedTriton with a tiny Python-backend model: launch, infer, fail loudly, stop fully."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import tritonclient.grpc.aio as grpcclient

from spoton_inference.embedded.pids import group_members, pid_alive
from spoton_inference.embedded.ports import port_is_free
from spoton_inference.embedded.supervisor import ChildStartError, ChildState
from spoton_inference.embedded.triton import ENV_PATH_PARAMETER, EmbeddedTriton
from spoton_inference.settings import Settings


@pytest_asyncio.fixture(scope="module")
async def triton(make_data_dir: Callable[[str], Path], tiny_model_repository: Path) -> AsyncIterator[EmbeddedTriton]:
    data_dir = make_data_dir("triton")
    server = EmbeddedTriton(Settings(data_dir=data_dir, model_repository=tiny_model_repository))
    await server.start()
    yield server
    await server.stop()


async def add_one(grpc_url: str, values: list[float]) -> np.ndarray:
    client = grpcclient.InferenceServerClient(grpc_url)
    try:
        tensor = grpcclient.InferInput("INPUT0", [len(values)], "FP32")
        tensor.set_data_from_numpy(np.asarray(values, dtype=np.float32))
        result = await client.infer("add_one", [tensor])
        return result.as_numpy("OUTPUT0")
    finally:
        await client.close()


async def test_infers_over_grpc_aio(triton: EmbeddedTriton) -> None:
    assert triton.status().state is ChildState.HEALTHY
    assert triton.models == ["add_one"]
    np.testing.assert_array_equal(await add_one(triton.grpc_url, [1.0, 2.0, 3.0]), [2.0, 3.0, 4.0])


async def test_runtime_repository_adds_env_path_and_leaves_the_committed_one(
    triton: EmbeddedTriton, tiny_model_repository: Path
) -> None:
    runtime = triton.root / "models" / "add_one"
    assert f'string_value: "{sys.prefix}"' in (runtime / "config.pbtxt").read_text()
    assert (runtime / "1").is_symlink()
    assert ENV_PATH_PARAMETER not in (tiny_model_repository / "add_one" / "config.pbtxt").read_text()


async def test_model_that_fails_to_load_fails_start_with_log_tail(
    tmp_path: Path, broken_model_repository: Path
) -> None:
    server = EmbeddedTriton(Settings(data_dir=tmp_path, model_repository=broken_model_repository))
    with pytest.raises(ChildStartError) as info:
        await server.start()
    assert "broken on purpose" in info.value.log_tail
    assert server.pid is None
    assert server.status().state is ChildState.FAILED


async def test_stale_server_is_replaced_and_stop_frees_pid_and_ports(triton: EmbeddedTriton) -> None:
    stale_pid = triton.pid
    assert stale_pid is not None
    # Same data dir, hence same pidfile: as if a crashed run had left `triton` behind.
    replacement = EmbeddedTriton(triton.settings)
    await replacement.start()
    pid = replacement.pid
    assert pid is not None
    try:
        assert not pid_alive(stale_pid)
        np.testing.assert_array_equal(await add_one(replacement.grpc_url, [0.5]), [1.5])
    finally:
        started = time.monotonic()
        await replacement.stop()
        elapsed = time.monotonic() - started

    assert elapsed < 6.0
    assert not pid_alive(pid)
    assert group_members(pid) == [], "python backend stubs must be gone too"
    ports = replacement.ports
    assert all(port_is_free(port) for port in (ports.grpc, ports.http, ports.metrics))
