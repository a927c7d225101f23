"""Detailed health: each dependency's state, rolled up to healthy / degraded / starting."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

HEALTHY, DEGRADED, STARTING, FAILED = "healthy", "degraded", "starting", "failed"


@dataclasses.dataclass(frozen=True, slots=True)
class ComponentHealth:
    name: str
    status: str
    detail: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class HealthReport:
    status: str
    components: tuple[ComponentHealth, ...]


Probe = Callable[[], Awaitable[list[ComponentHealth]]]


async def check(probes: list[Probe], *, warmed_up: bool, timeout_s: float = 3.0) -> HealthReport:
    """Run every probe (each bounded by ``timeout_s``) and roll the results up.

    ``starting`` until the models are warmed up; then ``healthy`` if all components are,
    else ``degraded``.
    """

    async def run(probe: Probe) -> list[ComponentHealth]:
        try:
            return await asyncio.wait_for(probe(), timeout_s)
        except Exception as exc:  # a probe that fails is itself the finding
            name = getattr(probe, "__name__", "probe").removeprefix("probe_")
            return [ComponentHealth(name, FAILED, f"{type(exc).__name__}: {exc}")]

    results = await asyncio.gather(*(run(p) for p in probes))
    components = tuple(c for group in results for c in group)
    if not warmed_up:
        status = STARTING
    elif all(c.status == HEALTHY for c in components):
        status = HEALTHY
    else:
        status = DEGRADED
    return HealthReport(status, components)
