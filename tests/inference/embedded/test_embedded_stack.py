"""EmbeddedStack end to end: order, endpoints into settings, stack.json, restarts of killed
servers on their own ports, a child that spends its restart budget, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from spoton_inference.embedded.pids import pid_alive
from spoton_inference.embedded.probes import http_ok, tcp_accepts
from spoton_inference.embedded.restarts import RestartPolicy, read_supervision, supervision_path
from spoton_inference.embedded.stack import EmbeddedStack
from spoton_inference.embedded.stackfile import find_live_stack, read_stack_file
from spoton_inference.embedded.supervisor import ChildSpec, ChildState
from spoton_inference.settings import Settings

# Serves HTTP on the port named by a SPOTON_* variable: proves settings.to_env() reaches children.
FAKE_SERVICE = """
import http.server, os, sys
port = int(os.environ[sys.argv[1]])
http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


async def always_ready() -> bool:
    return True


def fake_inference(settings: Settings) -> ChildSpec:
    return ChildSpec(
        name="inference",
        argv=(sys.executable, "-c", FAKE_SERVICE, "SPOTON_GRPC_PORT"),
        log_path=settings.data_dir / "logs" / "inference.log",
        ready=lambda: tcp_accepts(settings.grpc_host, settings.grpc_port),
        env=settings.to_env(),
        cwd=settings.data_dir,
    )


def fake_facade(settings: Settings) -> ChildSpec:
    return ChildSpec(
        name="facade",
        argv=(sys.executable, "-c", FAKE_SERVICE, "SPOTON_FACADE_PORT"),
        log_path=settings.data_dir / "logs" / "facade.log",
        ready=lambda: http_ok(f"http://{settings.facade_host}:{settings.facade_port}/"),
        env=settings.to_env(),
        cwd=settings.data_dir,
    )


def crasher(settings: Settings) -> ChildSpec:
    return ChildSpec(
        name="crasher",
        argv=("sh", "-c", "sleep 0.5; echo crashed on purpose; exit 4"),
        log_path=settings.data_dir / "logs" / "crasher.log",
        ready=always_ready,
    )


# One restart allowed, quickly: each server is killed once, the crasher dies twice.
ONE_QUICK_RESTART = RestartPolicy(max_restarts=1, backoff_initial_s=0.05)


async def _reachable(name: str, stack: EmbeddedStack) -> bool:
    endpoints = stack.endpoints
    if name == "triton":
        return await http_ok(f"{endpoints.triton_http_url}/v2/models/add_one/ready")
    if name == "postgres":
        conn = await asyncpg.connect(endpoints.postgres_dsn)
        await conn.close()
        return True
    client = aioredis.Redis.from_url(endpoints.redis_url)
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


async def test_stack_starts_in_order_restarts_the_killed_and_stops_on_error(
    tmp_path: Path, make_data_dir: Callable[[str], Path], tiny_model_repository: Path
) -> None:
    settings = Settings(data_dir=make_data_dir("stack"), model_repository=tiny_model_repository)
    stack_file = tmp_path / "var" / "stack.json"
    stack = EmbeddedStack(
        settings, children=[fake_inference, fake_facade, crasher], stack_file=stack_file, restart=ONE_QUICK_RESTART
    )
    endpoints, child_settings = stack.endpoints, stack.settings
    assert child_settings.postgres_dsn == endpoints.postgres_dsn
    assert child_settings.redis_url == endpoints.redis_url
    assert child_settings.triton_grpc_url == endpoints.triton_grpc_url
    assert child_settings.inference_target == endpoints.grpc_target
    assert f"http://{child_settings.facade_host}:{child_settings.facade_port}" == endpoints.facade_url
    assert child_settings.data_dir == settings.data_dir
    names = ["triton", "postgres", "redis", "inference", "facade", "crasher"]
    assert [s.name for s in stack.status()] == names
    assert all(s.state is ChildState.STOPPED for s in stack.status())

    with pytest.raises(RuntimeError, match="body failed"):
        async with stack:
            record = read_stack_file(stack_file)
            assert record is not None and record.pid == os.getpid()
            assert record.endpoints == endpoints
            assert await find_live_stack(stack_file) == endpoints
            assert await http_ok(f"{endpoints.triton_http_url}/v2/health/ready")
            conn = await asyncpg.connect(endpoints.postgres_dsn)
            await conn.close()
            client = aioredis.Redis.from_url(endpoints.redis_url)
            assert await client.ping()
            await client.aclose()

            # The crasher dies, is restarted once, dies again: its budget is spent.
            crashed = await asyncio.wait_for(stack.failed(), 10)
            assert crashed.name == "crasher" and crashed.state is ChildState.FAILED and crashed.restarts == 1
            assert crashed.exit_code == 4 and crashed.last_exit == "exited with code 4"
            assert "crashed on purpose" in crashed.log_tail
            assert not stack.healthy()

            # Each server killed comes back on the same endpoint, its data kept.
            for name in ("triton", "postgres", "redis"):
                killed = stack.status_of(name).pid
                assert killed is not None
                os.kill(killed, signal.SIGKILL)
                status = await asyncio.wait_for(stack.restarted(name, 1), 120)
                assert status.state is ChildState.HEALTHY and status.restarts == 1, status
                assert status.last_exit == "was killed by SIGKILL" and status.pid not in (None, killed)
                assert await _reachable(name, stack)
            assert stack.endpoints == endpoints and read_stack_file(stack_file).endpoints == endpoints
            reported = {c.name: c for c in read_supervision(supervision_path(settings.data_dir))}
            assert all(reported[n].restarts == 1 and reported[n].state == "healthy" for n in ("triton", "redis"))
            assert reported["crasher"].state == "failed"

            *running, _ = stack.status()
            assert all(s.state is ChildState.HEALTHY for s in running)
            pids = [s.pid for s in running]
            raise RuntimeError("body failed")

    assert not stack_file.exists()
    assert await find_live_stack(stack_file) is None
    assert not any(pid_alive(pid) for pid in pids if pid is not None)
    assert [s.state for s in stack.status()] == [ChildState.STOPPED] * 5 + [ChildState.FAILED]
    assert not supervision_path(settings.data_dir).exists()


SIGNALLED_PARENT = """
import asyncio, pathlib
from spoton_inference.embedded.stack import cancel_on_signals
from spoton_inference.embedded.supervisor import ChildProcess, ChildSpec

async def ready():
    return True

async def main():
    with cancel_on_signals():
        child = ChildProcess(ChildSpec("sleeper", ("sleep", "60"), pathlib.Path({log!r}), ready))
        await child.start()
        try:
            print(child.pid, flush=True)
            await asyncio.Event().wait()
        finally:
            await child.stop()
            print("stopped", flush=True)

try:
    asyncio.run(main())
except asyncio.CancelledError:
    pass
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_cancels_and_children_are_stopped(tmp_path: Path, sig: signal.Signals) -> None:
    script = SIGNALLED_PARENT.format(log=str(tmp_path / "s.log"))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())

    parent.send_signal(sig)
    assert parent.wait(timeout=10) == 0
    assert parent.stdout.read().strip() == "stopped"
    assert not pid_alive(child_pid)
