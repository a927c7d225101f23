"""CPU time a server process spends on a run of calls: a figure that other load on the machine
does not change, where throughput does.

``1e6 / cpu_us_per_call`` is the most calls a second that process could answer with one core
to itself; a server that needs more than that needs more processes (and cores).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import psutil


def listening_pid(port: int) -> int:
    """The pid of the process listening on TCP ``port`` on this host."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return conn.pid
    raise LookupError(f"no process listens on port {port}")


@dataclasses.dataclass
class CpuUse:
    """Filled in when the ``measured`` block ends: the process's user plus system seconds."""

    seconds: float = 0.0

    def us_per_call(self, calls: int) -> float:
        return self.seconds * 1e6 / calls if calls else float("nan")


def _seconds(times: Any, children: bool) -> float:  # psutil's pcputimes
    own = times.user + times.system
    return own + times.children_user + times.children_system if children else own


def _tree_seconds(process: psutil.Process, children: bool, tree: bool) -> dict[int, float]:
    members = [process, *(process.children(recursive=True) if tree else ())]
    seconds = {}
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            seconds[member.pid] = _seconds(member.cpu_times(), children)
    return seconds


@contextlib.contextmanager
def measured(pid: int, *, children: bool = False, tree: bool = False) -> Iterator[CpuUse]:
    """CPU seconds process ``pid`` used (all its threads) while the block ran; with
    ``children``, also that of its children that ended and were waited for in the block; with
    ``tree``, also that of its live descendants (Triton's model backends run as such)."""
    process = psutil.Process(pid)
    before = _tree_seconds(process, children, tree)
    use = CpuUse()
    try:
        yield use
    finally:
        after = _tree_seconds(process, children, tree)
        use.seconds = sum(t - before.get(member, 0.0) for member, t in after.items())
