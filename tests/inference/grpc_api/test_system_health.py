"""GetHealth and grpc.health.v1 on the in-process service (``live_service``): answered from the
background prober's newest round, so many calls cost a bounded number of probe runs, and the
prober starts with an app and is gone once the app is closed."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from spoton.v1 import system_pb2, system_pb2_grpc
from spoton_inference.app import InferenceApp
from spoton_inference.services.health import PROBER_TASK_NAME

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CALLS = 400
CONCURRENCY = 20


async def test_many_get_health_calls_cost_a_bounded_number_of_probe_runs(channel, live_service) -> None:
    app = live_service.app
    stub = system_pb2_grpc.SystemServiceStub(channel)
    await stub.GetHealth(system_pb2.GetHealthRequest(), timeout=10)  # the first round is in
    checker, probes = app.health_monitor.checker, 7  # triton, postgres, redis, catalog, live, watches, history
    runs, started = checker.probe_runs, time.monotonic()
    replies = []
    for _ in range(CALLS // CONCURRENCY):
        replies += await asyncio.gather(
            *(stub.GetHealth(system_pb2.GetHealthRequest(), timeout=10) for _ in range(CONCURRENCY))
        )
    elapsed = time.monotonic() - started
    assert len(replies) == CALLS and {r.status for r in replies} == {"healthy"}
    assert {"triton", "postgres", "redis"} <= {c.name for c in replies[-1].components}
    rounds = elapsed / app.settings.health_probe_interval_s + 2
    assert checker.probe_runs - runs <= rounds * probes, (checker.probe_runs - runs, elapsed)


async def test_grpc_health_follows_the_same_state(live_service) -> None:
    async with grpc.aio.insecure_channel(live_service.target) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert (await live_service.app.latest_health()).status == "healthy"


async def test_the_prober_starts_with_the_app_and_stops_with_it(service_settings) -> None:
    def probers() -> list[asyncio.Task]:
        return [t for t in asyncio.all_tasks() if t.get_name() == PROBER_TASK_NAME and not t.done()]

    before = len(probers())  # live_service's own
    app = await InferenceApp.create(await service_settings("spoton_health_prober"))
    try:
        assert app.health_monitor.running and len(probers()) == before + 1
        report = await app.latest_health()
        assert report.status == "starting"  # not warmed up: the roll-up reads the flag as it is now
        assert {c.name for c in report.components} >= {"triton", "postgres", "redis"}
    finally:
        await app.close()
    assert not app.health_monitor.running and len(probers()) == before
