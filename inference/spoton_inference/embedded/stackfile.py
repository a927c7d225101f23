"""``var/stack.json``: how a running embedded stack tells other processes where it listens.

The stack that owns the file writes it once ready and removes it on stop. A reader (the
CLI) uses :func:`find_live_stack` to decide whether to reuse that stack or start its own:
the file only counts when its owner process is alive and every endpoint accepts TCP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

from spoton_inference.embedded.endpoints import StackEndpoints
from spoton_inference.embedded.pids import pid_alive
from spoton_inference.embedded.probes import tcp_accepts

# The checkout this package runs from (inference/spoton_inference/embedded/stackfile.py), as
# settings.REPO_ROOT: the file is var/stack.json there.
_REPO_ROOT = Path(__file__).resolve().parents[3]
# SPOTON_STACK_FILE moves it, e.g. for a second stack beside a developer's own (read once: each CLI
# run is a fresh process).
DEFAULT_STACK_FILE = Path(os.environ.get("SPOTON_STACK_FILE") or _REPO_ROOT / "var" / "stack.json")


@dataclasses.dataclass(frozen=True, slots=True)
class StackRecord:
    """The content of a stack file."""

    pid: int
    started_at: float
    endpoints: StackEndpoints


def write_stack_file(endpoints: StackEndpoints, path: Path = DEFAULT_STACK_FILE) -> StackRecord:
    """Atomically write ``path`` naming this process as the owner."""
    record = StackRecord(pid=os.getpid(), started_at=time.time(), endpoints=endpoints)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(dataclasses.asdict(record), out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        # Readers see either the old file or the complete new one, never a partial write.
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return record


def read_stack_file(path: Path = DEFAULT_STACK_FILE) -> StackRecord | None:
    """The record in ``path``, or None when it is missing or malformed."""
    try:
        raw = json.loads(path.read_text())
        return StackRecord(
            pid=int(raw["pid"]),
            started_at=float(raw["started_at"]),
            endpoints=StackEndpoints(**raw["endpoints"]),
        )
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def remove_stack_file(path: Path = DEFAULT_STACK_FILE) -> None:
    """Remove ``path`` if this process owns it (another stack may have replaced it)."""
    record = read_stack_file(path)
    if record is None or record.pid == os.getpid():
        path.unlink(missing_ok=True)


async def find_live_stack(path: Path = DEFAULT_STACK_FILE, timeout_s: float = 1.0) -> StackEndpoints | None:
    """The endpoints in ``path`` if its owner is alive and every endpoint accepts TCP."""
    record = read_stack_file(path)
    if record is None or not pid_alive(record.pid):
        return None
    addresses = record.endpoints.tcp_addresses().values()
    checks = await asyncio.gather(*(tcp_accepts(h, p, timeout_s) for h, p in addresses))
    return record.endpoints if all(checks) else None
