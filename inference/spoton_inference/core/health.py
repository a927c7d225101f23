"""Detailed health: each dependency's state, rolled up to healthy / degraded / starting.

Probes are named after the component they check, and each is bounded: a probe that does not
answer within the bound (a frozen PostgreSQL accepts connections and then never replies)
reports its component failed, and is not started again while it still hangs, so a health
answer never waits on a frozen dependency for longer than the bound, and later ones not at
all. Restarts made by the embedded stack's supervisor are merged in per component.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence

HEALTHY, DEGRADED, STARTING, FAILED = "healthy", "degraded", "starting", "failed"
# Long enough for a local round trip under load (and for probes' own shorter bounds, which
# report their finding in detail), short enough for a dashboard poll.
PROBE_TIMEOUT_S = 1.5


@dataclasses.dataclass(frozen=True, slots=True)
class ComponentHealth:
    name: str
    status: str
    detail: str = ""
    # Restarts by the embedded stack's supervisor, and why the component last exited
    # ("was killed by SIGKILL", "exited with code 1"); 0 and "" when not supervised.
    restarts: int = 0
    last_exit: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class HealthReport:
    status: str
    components: tuple[ComponentHealth, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class SupervisedComponent:
    """The supervisor's view of one component: its state (a ``ChildState`` value),
    restarts so far and the reason of its last unexpected exit."""

    name: str
    state: str
    restarts: int = 0
    last_exit: str = ""


Probe = Callable[[], Awaitable[list[ComponentHealth]]]
# Supervisor states as health statuses, for components no probe of ours checks.
_SUPERVISED_STATUS = {"healthy": HEALTHY, "starting": STARTING, "restarting": STARTING}


class HealthChecker:
    """Runs named probes, each bounded by ``timeout_s``; at most one run of each at a time.

    Callers at the same moment share a probe's run. A run that outlasts the bound is left
    to finish (cancelling a query on a frozen server can hang as well) and its component is
    reported failed at once until it does.
    """

    def __init__(self, probes: Mapping[str, Probe], *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self._probes = dict(probes)
        self._timeout_s = timeout_s
        self._running: dict[str, asyncio.Task[list[ComponentHealth]]] = {}

    async def check(self, *, warmed_up: bool, supervised: Sequence[SupervisedComponent] = ()) -> HealthReport:
        """Every probe's findings with ``supervised`` merged in, rolled up.

        ``starting`` until the models are warmed up; then ``healthy`` if all components are,
        else ``degraded``.
        """
        results = await asyncio.gather(*(self._run(name) for name in self._probes))
        components = merge_supervised([c for group in results for c in group], supervised)
        if not warmed_up:
            status = STARTING
        elif all(c.status == HEALTHY for c in components):
            status = HEALTHY
        else:
            status = DEGRADED
        return HealthReport(status, tuple(components))

    async def close(self) -> None:
        """Cancel probe runs still hanging."""
        for task in self._running.values():
            task.cancel()
        for task in self._running.values():
            with contextlib.suppress(BaseException):
                await task
        self._running.clear()

    async def _run(self, name: str) -> list[ComponentHealth]:
        task = self._running.get(name)
        if task is None:
            task = asyncio.create_task(self._probes[name](), name=f"health-probe-{name}")
            self._running[name] = task
            task.add_done_callback(lambda done: self._forget(name, done))
        # Shielded: one caller giving up (or its timeout) must not cancel the shared run.
        done, _ = await asyncio.wait({task}, timeout=self._timeout_s)
        if not done:
            return [ComponentHealth(name, FAILED, f"no answer within {self._timeout_s:g}s: hung or frozen")]
        if task.cancelled():
            return [ComponentHealth(name, FAILED, "health check cancelled")]
        if (exc := task.exception()) is not None:  # a probe that fails is itself the finding
            return [ComponentHealth(name, FAILED, f"{type(exc).__name__}: {exc}")]
        return task.result()

    def _forget(self, name: str, done: asyncio.Task[list[ComponentHealth]]) -> None:
        if self._running.get(name) is done:
            del self._running[name]


def merge_supervised(
    components: Sequence[ComponentHealth], supervised: Sequence[SupervisedComponent]
) -> list[ComponentHealth]:
    """``components`` with each supervised one's restarts and last exit attached.

    A probed component keeps its probe's status unless the supervisor gave up on it; one no
    probe checks (the service children) is added with the supervisor's state.
    """
    by_name = {s.name: s for s in supervised}
    out: list[ComponentHealth] = []
    for c in components:
        s = by_name.pop(c.name, None)
        if s is None:
            out.append(c)
            continue
        status = FAILED if s.state == FAILED else c.status
        out.append(dataclasses.replace(c, status=status, restarts=s.restarts, last_exit=s.last_exit))
    for s in by_name.values():
        detail = f"supervised by the embedded stack: {s.state}"
        status = _SUPERVISED_STATUS.get(s.state, FAILED)
        out.append(ComponentHealth(s.name, status, detail, restarts=s.restarts, last_exit=s.last_exit))
    return out
