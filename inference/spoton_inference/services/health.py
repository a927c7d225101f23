"""Detailed health: each dependency's state, rolled up to healthy / degraded / starting.

Probes are named after the component they check, and each is bounded: a probe that does not
answer within the bound (a frozen PostgreSQL accepts connections and then never replies)
reports its component failed, and is not started again while it still hangs, so a health
answer never waits on a frozen dependency for longer than the bound, and later ones not at
all. Restarts made by the embedded stack's supervisor are merged in per component.

What callers read comes from a :class:`HealthMonitor`: one background prober runs a round of
every probe each ``interval_s`` (one round at a time) and keeps the newest findings, so a
health call answers from memory and costs no probe at all, however many callers poll. A
component that dies reads failed after the next round: within one interval plus the probe
bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

HEALTHY, DEGRADED, STARTING, FAILED = "healthy", "degraded", "starting", "failed"
# Long enough for a local round trip under load (and for probes' own shorter bounds, which
# report their finding in detail), short enough for a dashboard poll.
PROBE_TIMEOUT_S = 1.5
# A probe round starts this often (from the previous round's start; at once when a round ran
# longer, as it does while a probe hangs): the staleness of what a health call reads.
PROBE_INTERVAL_S = 1.0
PROBER_TASK_NAME = "health-prober"

log = logging.getLogger(__name__)


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
        # Probe runs started so far, all probes together (a shared or hung run counts once).
        self.probe_runs = 0

    async def check(self, *, warmed_up: bool, supervised: Sequence[SupervisedComponent] = ()) -> HealthReport:
        """Every probe's findings with ``supervised`` merged in, rolled up (see :func:`rollup`)."""
        return rollup(await self.components(supervised), warmed_up=warmed_up)

    async def components(self, supervised: Sequence[SupervisedComponent] = ()) -> tuple[ComponentHealth, ...]:
        """Every probe's findings, with ``supervised`` merged in."""
        results = await asyncio.gather(*(self._run(name) for name in self._probes))
        return tuple(merge_supervised([c for group in results for c in group], supervised))

    async def close(self) -> None:
        """Cancel probe runs still hanging."""
        running = list(self._running.values())  # each run's done callback leaves the dict
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(BaseException):
                await task
        self._running.clear()

    async def _run(self, name: str) -> list[ComponentHealth]:
        task = self._running.get(name)
        if task is None:
            task = asyncio.create_task(self._probes[name](), name=f"health-probe-{name}")
            self._running[name] = task
            self.probe_runs += 1
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


def rollup(components: Sequence[ComponentHealth], *, warmed_up: bool) -> HealthReport:
    """``starting`` until the models are warmed up; then ``healthy`` if all components are,
    else ``degraded``.

    >>> rollup([ComponentHealth("redis", HEALTHY)], warmed_up=True).status
    'healthy'
    >>> rollup([ComponentHealth("redis", FAILED)], warmed_up=True).status
    'degraded'
    """
    if not warmed_up:
        status = STARTING
    elif all(c.status == HEALTHY for c in components):
        status = HEALTHY
    else:
        status = DEGRADED
    return HealthReport(status, tuple(components))


class HealthMonitor:
    """The newest findings of ``checker``, refreshed by one background prober.

    Each round runs every probe (bounded as :class:`HealthChecker` bounds them) and replaces
    the findings at once. Rounds never overlap, and readers never start one: N readers cost
    no probe at all. :meth:`latest` waits only for the very first round (itself bounded by
    the probe bound).

    The supervisor's view (``supervised()``: restarts and states the embedded stack writes
    to its supervision file) is read each round, and again by a reader as soon as
    ``supervised_version()`` (cheap: the file's ``stat``) says it changed, so a restart or a
    child started shows at once.
    """

    def __init__(
        self,
        checker: HealthChecker,
        supervised: Callable[[], Sequence[SupervisedComponent]] = tuple,
        *,
        interval_s: float = PROBE_INTERVAL_S,
        supervised_version: Callable[[], object] = lambda: None,
    ) -> None:
        self.checker = checker
        self.interval_s = interval_s
        self._supervised = supervised
        self._supervised_version = supervised_version
        self._probed: tuple[ComponentHealth, ...] | None = None
        self._version: object = None
        self._components: tuple[ComponentHealth, ...] = ()
        self._first_round = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Rounds completed; each replaced the findings.
        self.rounds = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the prober (again a no-op while it runs)."""
        if not self.running:
            self._task = asyncio.create_task(self._probe_forever(), name=PROBER_TASK_NAME)

    async def close(self) -> None:
        """Stop the prober and cancel probe runs still hanging; nothing is left running."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.checker.close()

    async def latest(self, *, warmed_up: bool) -> HealthReport:
        """The newest round's findings, rolled up with ``warmed_up`` as it is now (so warming
        up shows at once). Starts the prober if nothing did."""
        if self._probed is None:
            self.start()
            await self._first_round.wait()
        if self._supervised_version() != self._version:
            self._merge()
        return rollup(self._components, warmed_up=warmed_up)

    def _merge(self) -> None:
        # The version first: a write landing in between is read again by the next reader.
        self._version = self._supervised_version()
        self._components = tuple(merge_supervised(self._probed or (), self._supervised()))

    async def _probe_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                self._probed = await self.checker.components()
                self._merge()
            except Exception as exc:  # a bug in a round must not stop the prober (and freeze health)
                log.exception("health probe round failed; the previous findings stay")
                if self._probed is None:  # readers wait for a first finding: this is one
                    self._probed = (ComponentHealth("health", FAILED, f"{type(exc).__name__}: {exc}"),)
                    self._components = self._probed
            self.rounds += 1
            self._first_round.set()
            await asyncio.sleep(max(0.0, self.interval_s - (loop.time() - started)))


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
