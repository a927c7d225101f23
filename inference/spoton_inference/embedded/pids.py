"""Looking at and ending processes by PID, through Linux ``/proc``.

Used for our own children's process groups and for stale servers left behind by a
previous run that crashed. A zombie counts as dead: it holds no ports, and in minimal
containers nobody may ever reap it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

_POLL_S = 0.05


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is parenthesised and may itself contain spaces or parentheses.
    return raw.rpartition(")")[2].split()


def pid_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def executable_name(pid: int) -> str | None:
    """File name of the program ``pid`` runs, or None when it is gone.

    Read from ``/proc/<pid>/exe`` rather than the command line, which servers rewrite
    (redis-server shows ``redis-server *:6379``). Without permission to follow that link
    (another user's process, not root) the kernel's ``comm`` name is used instead.
    """
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name.removesuffix(" (deleted)")
    except PermissionError:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):
            return None
    except (FileNotFoundError, ProcessLookupError):
        return None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # After the command name: state, ppid, pgrp, ...
        if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


async def _wait_until(done: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``done`` until it returns True (then True) or ``timeout_s`` passes (then False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not done():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)
    return True


async def end_pid(pid: int, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 5.0) -> None:
    """Send ``sig`` to a process that is not our child, wait, then SIGKILL it."""
    if not pid_alive(pid):
        return
    _signal(pid, sig)
    if await _wait_until(lambda: not pid_alive(pid), timeout_s):
        return
    _signal(pid, signal.SIGKILL)
    await _wait_until(lambda: not pid_alive(pid), 5.0)


async def end_group(pgid: int, grace_s: float = 2.0) -> None:
    """Give leftover members of process group ``pgid`` ``grace_s`` to exit, then SIGKILL them.

    A server's helpers (Triton's Python stubs, PostgreSQL backends) notice their parent is
    gone and exit by themselves, cleaning up shared memory; the kill is the backstop.
    """
    if await _wait_until(lambda: not group_members(pgid), grace_s):
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    await _wait_until(lambda: not group_members(pgid), 5.0)


def read_pidfile(path: Path) -> int | None:
    """The PID on the first line of ``path``, or None if missing or unreadable."""
    try:
        first = path.read_text().splitlines()[0]
        return int(first.strip())
    except (FileNotFoundError, IndexError, ValueError):
        return None


def runs_executable(pid: int, executable: str) -> bool:
    """True when live ``pid`` runs a program whose file name is ``executable``."""
    name = executable_name(pid)
    if name is None or not pid_alive(pid):
        return False
    # The comm fallback is truncated to 15 characters by the kernel.
    return name == executable or (len(name) == 15 and executable.startswith(name))


async def end_stale(
    pidfile: Path, executable: str, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 5.0
) -> int | None:
    """End the process recorded in ``pidfile`` if it still runs ``executable``; return its PID.

    The executable check keeps a recycled PID (now some unrelated process) from being killed.
    The process group goes too, since a crashed run's server may have left helpers behind.
    """
    pid = read_pidfile(pidfile)
    if pid is None or pid == os.getpid() or not runs_executable(pid, executable):
        return None
    await end_pid(pid, sig, timeout_s)
    await end_group(pid)
    return pid
