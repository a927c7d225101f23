"""Health tells the truth, and the stack heals: with every part up all is healthy; a Triton,
PostgreSQL or Redis killed with SIGKILL is restarted on its own port and its restart is shown
by GetHealth, /health and the Prometheus counter; a frozen PostgreSQL (SIGSTOP) reads as
unhealthy within a couple of seconds, and healthy again once it is let go (SIGCONT)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from support.auth import ADMIN_API_KEY, admin_headers, authed_channel

from spoton.v1 import inference_pb2, inference_pb2_grpc
from spoton_client.client import SpotOnClient
from spoton_inference.embedded.ports import pick_free_port
from spoton_inference.embedded.supervisor import ChildState
from spoton_inference.launch import full_stack
from spoton_inference.services.health import PROBE_INTERVAL_S, PROBE_TIMEOUT_S
from spoton_inference.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
# How late past interval + bound a busy machine may see a frozen component read failed.
FREEZE_SLACK_S = 1.5


@pytest_asyncio.fixture(scope="module")
async def stack(make_data_dir):
    settings = Settings(data_dir=make_data_dir("health"), metrics_port=pick_free_port(), admin_api_key=ADMIN_API_KEY)
    async with full_stack(settings) as running:
        yield running


async def _components(stack) -> dict:
    async with SpotOnClient(stack.endpoints.grpc_target, api_key=ADMIN_API_KEY) as client:
        return {c.name: c for c in (await client.health()).components}


async def _eventually_healthy(stack, name: str, timeout_s: float = 30.0):
    """The service's view of ``name`` once it reads healthy again."""
    deadline = time.monotonic() + timeout_s
    while True:
        component = (await _components(stack))[name]
        if component.status == "healthy":
            return component
        assert time.monotonic() < deadline, component
        await asyncio.sleep(0.2)


async def _restart_counter(stack) -> dict[str, float]:
    settings = stack.settings
    async with httpx.AsyncClient(headers=admin_headers()) as http:
        reply = await http.get(f"http://{settings.grpc_host}:{settings.metrics_port}/metrics")
    return {
        s.labels["component"]: s.value
        for f in text_string_to_metric_families(reply.text)
        for s in f.samples
        if s.name == "spoton_component_restarts_total"
    }


async def test_everything_up_is_healthy_with_detail_per_component(stack):
    async with SpotOnClient(stack.endpoints.grpc_target, api_key=ADMIN_API_KEY) as client:
        health = await client.health()
    components = {c.name: c.status for c in health.components}
    assert health.status == "healthy", health
    assert set(components) >= {"triton", "model:detector", "model:reid", "postgres", "redis", "homography_cache"}
    assert {"inference", "facade"} <= set(components), "the stack's service children are reported too"
    assert not any(name.startswith("_") or "probe" in name for name in components)
    assert set(components.values()) == {"healthy"}
    assert all(c.restarts == 0 and c.last_exit == "" for c in health.components)
    async with httpx.AsyncClient(headers=admin_headers()) as http:
        reply = await http.get(f"{stack.endpoints.facade_url}/health")
    assert reply.status_code == 200 and reply.json()["status"] == "healthy"


async def test_a_killed_triton_is_restarted_and_reported_everywhere(stack):
    killed = stack.triton.pid
    os.kill(killed, signal.SIGKILL)
    status = await asyncio.wait_for(stack.restarted("triton", 1), 300)
    assert status.state is ChildState.HEALTHY and status.last_exit == "was killed by SIGKILL"
    assert stack.triton.pid != killed and stack.settings.triton_grpc_url == stack.triton.grpc_url

    # The service reaches the restarted Triton within seconds, on the same endpoint.
    started = time.monotonic()
    triton = await _eventually_healthy(stack, "triton", timeout_s=10)
    async with authed_channel(stack.endpoints.grpc_target) as channel:
        detect = inference_pb2_grpc.InferenceServiceStub(channel).Detect
        frame = np.zeros((48, 64, 3), np.uint8)
        request = inference_pb2.DetectRequest(raw=inference_pb2.RawImage(data=frame.tobytes(), width=64, height=48))
        await detect(request, timeout=30)
    assert time.monotonic() - started < 10
    assert (triton.restarts, triton.last_exit) == (1, "was killed by SIGKILL")

    async with httpx.AsyncClient(headers=admin_headers()) as http:
        reply = await http.get(f"{stack.endpoints.facade_url}/health")
    rest = {c["name"]: c for c in reply.json()["components"]}
    assert rest["triton"]["restarts"] == 1 and rest["triton"]["last_exit"] == "was killed by SIGKILL"
    assert (await _restart_counter(stack))["triton"] == 1


async def test_killed_postgres_and_redis_come_back_on_their_ports(stack):
    for name in ("postgres", "redis"):
        before = (await _restart_counter(stack))[name]
        os.kill(stack.status_of(name).pid, signal.SIGKILL)
        status = await asyncio.wait_for(stack.restarted(name, 1), 60)
        assert status.state is ChildState.HEALTHY and status.last_exit == "was killed by SIGKILL"
        # The service's pool and client reconnect to the same endpoint on their own.
        component = await _eventually_healthy(stack, name)
        assert (component.restarts, component.last_exit) == (1, "was killed by SIGKILL")
        assert (await _restart_counter(stack))[name] == before + 1
    async with SpotOnClient(stack.endpoints.grpc_target, api_key=ADMIN_API_KEY) as client:
        assert (await client.health()).status == "healthy"


def _server_processes(pid: int) -> list[int]:
    """``pid`` and its children. PostgreSQL's backends each lead a session of their own
    (setsid), so signalling the postmaster's group reaches the postmaster alone, and a
    connection already open would go on answering."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if ppid == pid:
            children.append(int(stat.parent.name))
    return [pid, *children]


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


async def test_a_frozen_postgres_is_unhealthy_within_seconds_and_healthy_once_thawed(stack):
    # A monitor polls: its credential is in the service's key cache (services/auth.py), which
    # answers for it while PostgreSQL cannot.
    assert (await _components(stack))["postgres"].status == "healthy"
    # The whole server, as a paused host freezes it: the postmaster first (no new backends), then the rest.
    frozen = _server_processes(stack.postgres.pid)
    _signal_all(frozen, signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        while True:
            asked = time.monotonic()
            postgres = (await _components(stack))["postgres"]
            assert time.monotonic() - asked < PROBE_TIMEOUT_S + 1.0, "the answer waited on the frozen database"
            if postgres.status != "healthy":
                break
            # Health answers from the prober's newest round: a round under way when the freeze came
            # may still have read healthy, so the change shows within one interval plus the probe's
            # bound, with scheduling slack for a busy CI machine.
            assert time.monotonic() - frozen_at < PROBE_INTERVAL_S + PROBE_TIMEOUT_S + FREEZE_SLACK_S, (
                "a frozen PostgreSQL still reads healthy"
            )
        # The prober's bound (no answer: failed) or the pool's own check (unreachable: degraded,
        # tracking goes on) notices first, whichever the machine's scheduling lets fire first.
        assert (postgres.status, "no answer" in postgres.detail) == ("failed", True) or (
            postgres.status == "degraded" and "unreachable" in postgres.detail
        ), postgres
    finally:
        _signal_all(frozen, signal.SIGCONT)
    await _eventually_healthy(stack, "postgres", timeout_s=15)
