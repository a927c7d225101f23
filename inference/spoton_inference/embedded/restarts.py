"""Restarting crashed components, and telling the inference service about it.

:class:`Supervisor` watches started components and restarts one that exits on its own.
:class:`RestartPolicy`: a component that exits on its own is started again after a capped,
exponentially growing delay, at most ``max_restarts`` times within ``window_s``; one more
crash inside the window and the stack gives up on it (FAILED) and stops.

The supervision file (``<data_dir>/supervision.json``) holds every component's state,
restart count and last exit reason. The stack rewrites it on each change; the inference
service (a child of the stack, or in the stack's own process in tests) reads it for
GetHealth and the restart metric. It only counts while the process that wrote it is alive,
so one left by a killed stack is never mistaken for the present.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from spoton_inference.domain.backoff import doubling_s
from spoton_inference.embedded.pids import pid_alive
from spoton_inference.embedded.supervisor import ChildState, ChildStatus
from spoton_inference.services.health import SupervisedComponent

logger = logging.getLogger(__name__)

SUPERVISION_FILE = "supervision.json"
# 5 restarts in 10 minutes, waits of 1, 2, 4, 8, 16 s: a component that crashes now and then
# is brought back each time, one that cannot stay up stops the stack within about a minute.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 600.0
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0


@dataclasses.dataclass(frozen=True, slots=True)
class RestartPolicy:
    max_restarts: int = MAX_RESTARTS
    window_s: float = RESTART_WINDOW_S
    backoff_initial_s: float = BACKOFF_INITIAL_S
    backoff_max_s: float = BACKOFF_MAX_S

    def backoff_s(self, recent: int) -> float:
        """The wait before the next restart, after ``recent`` restarts within the window."""
        return doubling_s(recent, self.backoff_initial_s, self.backoff_max_s)


class RestartBudget:
    """Restart times within the policy's window, to decide whether one more is allowed."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._times: collections.deque[float] = collections.deque()

    def recent(self, now: float) -> int:
        while self._times and now - self._times[0] >= self.policy.window_s:
            self._times.popleft()
        return len(self._times)

    def allows(self, now: float) -> bool:
        return self.recent(now) < self.policy.max_restarts

    def spend(self, now: float) -> None:
        self._times.append(now)


class Component(Protocol):
    """What is supervised: the embedded servers and plain ChildProcesses."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> ChildStatus: ...

    async def crashed(self) -> None: ...


@dataclasses.dataclass(slots=True)
class _Record:
    """Restart bookkeeping for one component."""

    budget: RestartBudget
    restarts: int = 0
    last_exit: str | None = None
    restarting: bool = False
    gave_up: bool = False
    # While watched, a crash is about to be handled: reported as RESTARTING, not FAILED.
    watched: bool = False


class Supervisor:
    """Restarts watched components that crash, under ``policy``; reports each change.

    ``on_change`` is called with every component's status after each change (a crash, a
    restart, giving up). :meth:`failed` and :meth:`restarted` wait for those changes.
    """

    def __init__(
        self,
        components: Sequence[Component],
        policy: RestartPolicy,
        on_change: Callable[[list[ChildStatus]], None] = lambda statuses: None,
    ) -> None:
        self.policy = policy
        self._components = list(components)
        self._records = {c.name: _Record(RestartBudget(policy)) for c in self._components}
        self._on_change = on_change
        self._tasks: list[asyncio.Task[None]] = []
        # Replaced on every change; waiters hold the old one (see _wait_until).
        self._change = asyncio.Event()

    def status(self) -> list[ChildStatus]:
        """Each component's status with restarts and the last exit reason. RESTARTING from
        a crash until the component is ready again; FAILED once the budget is spent."""
        out: list[ChildStatus] = []
        for component in self._components:
            status, record = component.status(), self._records[component.name]
            state = status.state
            if record.gave_up:
                state = ChildState.FAILED
            elif state is not ChildState.HEALTHY and (
                record.restarting or (record.watched and state is ChildState.FAILED)
            ):
                state = ChildState.RESTARTING
            out.append(dataclasses.replace(status, state=state, restarts=record.restarts, last_exit=record.last_exit))
        return out

    def watch(self, component: Component) -> None:
        """Restart ``component`` (started, one of ours) from now on whenever it crashes."""
        self._records[component.name].watched = True
        self._tasks.append(asyncio.create_task(self._supervise(component), name=f"supervise-{component.name}"))
        self.changed()

    async def close(self) -> None:
        """Stop watching; a restart in progress ends (its start() stops what it launched)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for record in self._records.values():
            record.watched = False

    async def failed(self) -> ChildStatus:
        """Wait until a component has spent its restart budget; return its status."""
        await self._wait_until(lambda: any(r.gave_up for r in self._records.values()))
        return next(s for s in self.status() if self._records[s.name].gave_up)

    async def restarted(self, name: str, restarts: int) -> ChildStatus:
        """Wait until component ``name`` is HEALTHY after at least ``restarts`` restarts, or
        FAILED; return its status."""

        def done() -> bool:
            status = self._status_of(name)
            return self._records[name].gave_up or (status.state is ChildState.HEALTHY and status.restarts >= restarts)

        await self._wait_until(done)
        return self._status_of(name)

    def changed(self) -> None:
        """Report the present state, and wake whoever waits on a change."""
        self._on_change(self.status())
        self._change.set()
        self._change = asyncio.Event()

    def _status_of(self, name: str) -> ChildStatus:
        return next(s for s in self.status() if s.name == name)

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._change.wait()

    async def _supervise(self, component: Component) -> None:
        record, policy = self._records[component.name], self.policy
        loop = asyncio.get_running_loop()
        while True:
            await component.crashed()
            record.last_exit = component.status().reason or "exited"
            while True:
                now = loop.time()
                if not record.budget.allows(now):
                    record.gave_up, record.restarting, record.watched = True, False, False
                    logger.error(
                        "%s %s after %d restarts within %gs; giving up on it",
                        component.name,
                        record.last_exit,
                        record.budget.recent(now),
                        policy.window_s,
                    )
                    self.changed()
                    return
                delay = policy.backoff_s(record.budget.recent(now))
                record.restarting = True
                logger.warning(
                    "%s %s; restarting it in %gs (restart %d; at most %d within %gs)",
                    component.name,
                    record.last_exit,
                    delay,
                    record.restarts + 1,
                    policy.max_restarts,
                    policy.window_s,
                )
                self.changed()
                await asyncio.sleep(delay)
                if component.status().state is not ChildState.FAILED:  # its owner started or stopped it
                    record.restarting = False
                    self.changed()
                    break
                record.budget.spend(loop.time())
                record.restarts += 1
                try:
                    await component.start()
                except Exception as exc:
                    record.last_exit = getattr(exc, "reason", None) or f"failed to start: {exc}"
                    logger.warning("%s did not come back: %s", component.name, record.last_exit)
                    # A part of start() after the launch (PostgreSQL's bootstrap) may have failed.
                    await component.stop()
                    continue
                record.restarting = False
                logger.warning(
                    "%s restarted (pid %s, restart %d)", component.name, component.status().pid, record.restarts
                )
                self.changed()
                break


def supervision_path(data_dir: Path) -> Path:
    return data_dir / SUPERVISION_FILE


def write_supervision(path: Path, statuses: Sequence[ChildStatus]) -> None:
    """Atomically replace ``path`` with ``statuses``, naming this process as the writer."""
    record = {
        "pid": os.getpid(),
        "components": [
            {"name": s.name, "state": str(s.state), "restarts": s.restarts, "last_exit": s.last_exit or ""}
            for s in statuses
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(record, out)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def read_supervision(path: Path) -> list[SupervisedComponent]:
    """The components in ``path``; none when it is missing, malformed or its writer is gone."""
    try:
        raw = json.loads(path.read_text())
        if not pid_alive(int(raw["pid"])):
            return []
        return [
            SupervisedComponent(str(c["name"]), str(c["state"]), int(c["restarts"]), str(c["last_exit"]))
            for c in raw["components"]
        ]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return []


def remove_supervision(path: Path) -> None:
    """Remove ``path`` if this process wrote it."""
    try:
        owner = int(json.loads(path.read_text())["pid"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return
    if owner == os.getpid():
        path.unlink(missing_ok=True)
