"""Supervisor: crashed children come back under back-off and a budget; the supervision file
tells the inference service about it. Real child processes, killed for real."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from spoton_inference.embedded.pids import pid_alive
from spoton_inference.embedded.restarts import (
    RestartBudget,
    RestartPolicy,
    Supervisor,
    read_supervision,
    write_supervision,
)
from spoton_inference.embedded.supervisor import ChildProcess, ChildSpec, ChildState, ChildStatus
from spoton_inference.services.health import SupervisedComponent

QUICK = RestartPolicy(max_restarts=2, window_s=60.0, backoff_initial_s=0.05, backoff_max_s=0.2)


async def always_ready() -> bool:
    return True


def test_backoff_doubles_up_to_its_cap_and_the_budget_is_per_window() -> None:
    policy = RestartPolicy(max_restarts=3, window_s=100.0, backoff_initial_s=1.0, backoff_max_s=5.0)
    assert [policy.backoff_s(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    budget = RestartBudget(policy)
    for now in (0.0, 10.0, 20.0):
        assert budget.allows(now)
        budget.spend(now)
    assert not budget.allows(50.0)
    assert budget.allows(100.0) and budget.recent(100.0) == 2  # the first has left the window


async def test_a_killed_child_is_restarted_and_reported(tmp_path: Path) -> None:
    child = ChildProcess(ChildSpec("sleeper", ("sleep", "60"), tmp_path / "s.log", always_ready))
    published: list[list[ChildStatus]] = []
    supervisor = Supervisor([child], QUICK, published.append)
    await child.start()
    supervisor.watch(child)
    first = child.pid
    assert first is not None
    try:
        os.kill(first, signal.SIGKILL)
        status = await asyncio.wait_for(supervisor.restarted("sleeper", 1), 10)
        assert status.state is ChildState.HEALTHY and status.restarts == 1
        assert status.last_exit == "was killed by SIGKILL"
        assert status.pid is not None and status.pid != first and pid_alive(status.pid)
        states = [s[0].state for s in published]
        assert ChildState.RESTARTING in states and states[-1] is ChildState.HEALTHY
    finally:
        await supervisor.close()
        await child.stop()


async def test_a_child_that_keeps_dying_spends_its_budget_and_is_failed(tmp_path: Path) -> None:
    argv = ("sh", "-c", "sleep 0.1; echo dying >&2; exit 1")
    child = ChildProcess(ChildSpec("crasher", argv, tmp_path / "c.log", always_ready))
    supervisor = Supervisor([child], QUICK)
    await child.start()
    supervisor.watch(child)
    try:
        status = await asyncio.wait_for(supervisor.failed(), 10)
        assert status.name == "crasher" and status.state is ChildState.FAILED
        assert status.restarts == QUICK.max_restarts
        assert status.last_exit == "exited with code 1" and "dying" in status.log_tail
        await asyncio.sleep(0.3)
        assert child.pid is None, "nothing restarts after the budget is spent"
    finally:
        await supervisor.close()
        await child.stop()
    assert supervisor.status()[0].state is ChildState.FAILED


async def test_a_deliberate_stop_is_not_restarted(tmp_path: Path) -> None:
    child = ChildProcess(ChildSpec("sleeper", ("sleep", "60"), tmp_path / "s.log", always_ready))
    supervisor = Supervisor([child], QUICK)
    await child.start()
    supervisor.watch(child)
    try:
        await child.stop()
        await asyncio.sleep(0.3)
        [status] = supervisor.status()
        assert status.state is ChildState.STOPPED and status.restarts == 0
    finally:
        await supervisor.close()


def test_the_supervision_file_counts_only_while_its_writer_lives(tmp_path: Path) -> None:
    path = tmp_path / "supervision.json"
    status = ChildStatus("triton", ChildState.RESTARTING, restarts=2, last_exit="was killed by SIGKILL")
    write_supervision(path, [status])
    assert read_supervision(path) == [SupervisedComponent("triton", "restarting", 2, "was killed by SIGKILL")]

    record = json.loads(path.read_text())
    record["pid"] = 2**22 + 1  # above pid_max's default: no such process
    path.write_text(json.dumps(record))
    assert read_supervision(path) == []
    path.write_text("{torn")
    assert read_supervision(path) == []
