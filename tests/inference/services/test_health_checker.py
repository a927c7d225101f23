"""HealthChecker: components named after themselves, a hung probe reported failed within the
bound (and not piled up), and the supervisor's restarts merged per component."""

from __future__ import annotations

import asyncio
import time

from spoton_inference.services.health import (
    DEGRADED,
    FAILED,
    HEALTHY,
    STARTING,
    ComponentHealth,
    HealthChecker,
    SupervisedComponent,
)


async def test_a_hung_probe_is_its_component_failed_within_the_bound_and_runs_once() -> None:
    frozen = asyncio.Event()
    runs = 0

    async def postgres() -> list[ComponentHealth]:
        nonlocal runs
        runs += 1
        await frozen.wait()  # a server that accepted the connection and never answers
        return [ComponentHealth("postgres", HEALTHY)]

    async def redis() -> list[ComponentHealth]:
        return [ComponentHealth("redis", HEALTHY)]

    checker = HealthChecker({"postgres": postgres, "redis": redis}, timeout_s=0.2)
    started = time.monotonic()
    first = await checker.check(warmed_up=True)
    assert time.monotonic() - started < 1.0
    components = {c.name: c for c in first.components}
    assert first.status == DEGRADED
    assert components["postgres"].status == FAILED and "no answer within 0.2s" in components["postgres"].detail
    assert components["redis"].status == HEALTHY

    reports = await asyncio.gather(*(checker.check(warmed_up=True) for _ in range(5)))
    assert all({c.name: c.status for c in r.components}["postgres"] == FAILED for r in reports)
    assert runs == 1, "callers share the hung run instead of starting more"

    frozen.set()  # SIGCONT
    await asyncio.sleep(0)
    again = await checker.check(warmed_up=True)
    assert again.status == HEALTHY
    await checker.close()


async def test_a_probe_that_raises_is_reported_under_its_component_name() -> None:
    async def triton() -> list[ComponentHealth]:
        raise ConnectionRefusedError("nothing listens")

    report = await HealthChecker({"triton": triton}).check(warmed_up=False)
    assert report.status == STARTING
    [component] = report.components
    assert component.name == "triton" and component.status == FAILED
    assert "ConnectionRefusedError: nothing listens" in component.detail


async def test_restarts_are_merged_per_component_and_children_are_added() -> None:
    async def probes() -> list[ComponentHealth]:
        return [ComponentHealth("triton", HEALTHY), ComponentHealth("model:detector", HEALTHY)]

    supervised = [
        SupervisedComponent("triton", "healthy", restarts=2, last_exit="was killed by SIGKILL"),
        SupervisedComponent("facade", "restarting", restarts=1, last_exit="exited with code 1"),
        SupervisedComponent("redis", "failed", restarts=5, last_exit="was killed by SIGSEGV"),
    ]
    report = await HealthChecker({"triton": probes}).check(warmed_up=True, supervised=supervised)
    components = {c.name: c for c in report.components}
    assert components["triton"] == ComponentHealth("triton", HEALTHY, "", 2, "was killed by SIGKILL")
    assert components["model:detector"].restarts == 0
    assert (components["facade"].status, components["facade"].restarts) == (STARTING, 1)
    assert (components["redis"].status, components["redis"].last_exit) == (FAILED, "was killed by SIGSEGV")
    assert report.status == DEGRADED
