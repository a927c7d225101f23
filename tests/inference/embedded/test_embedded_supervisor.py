"""ChildProcess: readiness, crash reporting, stopping by PID, stale and orphaned children."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from spoton_inference.embedded.pids import group_members, pid_alive
from spoton_inference.embedded.supervisor import (
    ChildProcess,
    ChildSpec,
    ChildStartError,
    ChildState,
)


async def always_ready() -> bool:
    return True


async def never_ready() -> bool:
    return False


async def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_start_then_stop(tmp_path: Path) -> None:
    child = ChildProcess(ChildSpec("sleeper", ("sleep", "60"), tmp_path / "s.log", always_ready))
    await child.start()
    pid = child.pid
    assert pid is not None and pid_alive(pid)
    assert child.status().state is ChildState.HEALTHY

    await child.stop()
    assert not pid_alive(pid)
    status = child.status()
    assert status.state is ChildState.STOPPED and status.pid is None and status.reason is None


async def test_crash_after_ready_is_reported_with_exit_code_and_log(tmp_path: Path) -> None:
    argv = ("sh", "-c", "sleep 0.3; echo boom >&2; exit 3")
    child = ChildProcess(ChildSpec("crasher", argv, tmp_path / "c.log", always_ready))
    await child.start()
    await eventually(lambda: child.status().state is ChildState.FAILED)

    status = child.status()
    assert status.exit_code == 3
    assert status.reason == "exited with code 3"
    assert "boom" in status.log_tail
    await child.stop()
    assert child.status().state is ChildState.FAILED, "a stop must not hide the crash"


async def test_exit_before_ready_raises_with_code_and_log(tmp_path: Path) -> None:
    argv = ("sh", "-c", "echo cannot start; exit 7")
    child = ChildProcess(ChildSpec("early", argv, tmp_path / "e.log", never_ready))
    with pytest.raises(ChildStartError) as info:
        await child.start()
    assert info.value.reason == "exited with code 7"
    assert "cannot start" in info.value.log_tail
    assert child.status().exit_code == 7


async def test_missing_executable_raises(tmp_path: Path) -> None:
    spec = ChildSpec("ghost", (str(tmp_path / "nope"),), tmp_path / "g.log", always_ready)
    child = ChildProcess(spec)
    with pytest.raises(ChildStartError, match="could not run"):
        await child.start()
    assert child.status().state is ChildState.FAILED


async def test_readiness_timeout_reports_probe_error_and_ends_child(tmp_path: Path) -> None:
    seen: list[int] = []

    async def refusing() -> bool:
        if child.pid is not None:
            seen.append(child.pid)
        raise ConnectionRefusedError("nothing listens")

    spec = ChildSpec("slow", ("sleep", "60"), tmp_path / "t.log", refusing, ready_timeout_s=0.5)
    child = ChildProcess(spec)
    with pytest.raises(ChildStartError) as info:
        await child.start()
    assert "not ready after 0.5s" in info.value.reason
    assert "nothing listens" in info.value.reason
    assert seen and not pid_alive(seen[0])


async def test_stop_escalates_to_sigkill_and_clears_the_process_group(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"

    async def trapped() -> bool:
        return "trapped" in log.read_text()

    # The shell and its (non-exec'd) sleep both ignore SIGTERM.
    argv = ("sh", "-c", "trap '' TERM; echo trapped; sleep 60; true")
    child = ChildProcess(ChildSpec("stubborn", argv, log, trapped, stop_timeout_s=0.3))
    await child.start()
    pid = child.pid
    assert pid is not None
    await eventually(lambda: len(group_members(pid)) == 2)

    started = time.monotonic()
    await child.stop()
    assert time.monotonic() - started < 5.0
    assert not pid_alive(pid)
    assert group_members(pid) == []


async def test_stale_process_named_in_pidfile_is_ended(tmp_path: Path) -> None:
    pidfile = tmp_path / "sleep.pid"
    stale = await asyncio.create_subprocess_exec("sleep", "60", start_new_session=True)
    pidfile.write_text(f"{stale.pid}\n")

    spec = ChildSpec("sleeper", ("sleep", "30"), tmp_path / "s.log", always_ready, pidfile=pidfile)
    child = ChildProcess(spec)
    await child.start()
    try:
        assert await asyncio.wait_for(stale.wait(), 5) == -signal.SIGTERM
        assert pidfile.read_text().strip() == str(child.pid)
    finally:
        await child.stop()
    assert not pidfile.exists()


async def test_recycled_pid_in_pidfile_is_left_alone(tmp_path: Path) -> None:
    pidfile = tmp_path / "sleep.pid"
    unrelated = await asyncio.create_subprocess_exec("sh", "-c", "sleep 60")
    pidfile.write_text(f"{unrelated.pid}\n")

    spec = ChildSpec("sleeper", ("sleep", "30"), tmp_path / "s.log", always_ready, pidfile=pidfile)
    child = ChildProcess(spec)
    await child.start()
    try:
        assert unrelated.returncode is None and pid_alive(unrelated.pid)
    finally:
        await child.stop()
        unrelated.kill()
        await unrelated.wait()


SUPERVISING_PARENT = """
import asyncio, pathlib
from spoton_inference.embedded.supervisor import ChildProcess, ChildSpec

async def ready():
    return True

async def main():
    child = ChildProcess(ChildSpec("sleeper", ("sleep", "60"), pathlib.Path({log!r}), ready))
    await child.start()
    print(child.pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_child_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = SUPERVISING_PARENT.format(log=str(tmp_path / "s.log"))
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert pid_alive(child_pid)

    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while pid_alive(child_pid):
        assert time.monotonic() < deadline, "child outlived its SIGKILLed parent"
        time.sleep(0.05)
