"""Supervised child processes: launch, wait until ready, watch, stop.

A :class:`ChildProcess` runs one command from a :class:`ChildSpec` with its output in a
log file, polls an async readiness probe, and stops the child by its own PID (stop signal,
timeout, SIGKILL). A watcher task notices when the child exits on its own and records the
exit code and log tail, so a crashed child is reported by :meth:`ChildProcess.status`
rather than hidden.

Each child gets its own session (a Ctrl-C in the terminal reaches only us, so we can stop
the children in order) and dies with us even if we are SIGKILLed (``PR_SET_PDEATHSIG``),
so no orphaned server keeps ports or data locked. Leftovers in the child's process group
are cleaned up after the child exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import enum
import logging
import os
import pwd
import shlex
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from spoton_inference.embedded.pids import end_group, end_stale

logger = logging.getLogger(__name__)

ReadinessProbe = Callable[[], Awaitable[bool]]

_PR_SET_PDEATHSIG = 1
# Bound once here: the forked child must not look anything up before it execs.
_prctl = ctypes.CDLL(None, use_errno=True).prctl
# util-linux's setpriv sets the parent-death signal and execs the command, so no Python runs
# in the forked child. A ``preexec_fn`` does, and in a process with gRPC threads (the tests'
# in-process service restarting Redis, say) the child then crashes with SIGSEGV in threading's
# after-fork hook before it execs, about one fork in five; it remains the fallback.
_SETPRIV = shutil.which("setpriv")
_READY_POLL_S = 0.1
_PROBE_TIMEOUT_S = 5.0
_TAIL_LINES = 40
_TAIL_BYTES = 16_384


class ChildState(enum.StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    HEALTHY = "healthy"
    STOPPING = "stopping"
    FAILED = "failed"
    # Reported by the stack between a crash and the ready restart (never by ChildProcess).
    RESTARTING = "restarting"


@dataclasses.dataclass(frozen=True, slots=True)
class ChildSpec:
    """What to run and how to tell it is ready.

    ``env`` is added on top of this process's environment. ``ready`` is polled until it
    returns True; an exception from it means "not ready yet" and is reported on timeout.
    ``pidfile``, when set, records the PID so a later run can end a server left behind by
    a crash (only if that PID still runs the same executable).
    """

    name: str
    argv: tuple[str, ...]
    log_path: Path
    ready: ReadinessProbe
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cwd: Path | None = None
    # Run as this system user (needs root; PostgreSQL refuses to run as root itself).
    user: str | None = None
    pidfile: Path | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 5.0
    ready_timeout_s: float = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class ChildStatus:
    """A snapshot for health reporting; ``reason`` and ``log_tail`` are set when failed."""

    name: str
    state: ChildState
    pid: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    log_tail: str = ""
    # Filled in by the stack, which restarts crashed children (see RestartPolicy).
    restarts: int = 0
    last_exit: str | None = None


class ChildStartError(RuntimeError):
    """A child exited or timed out before it became ready."""

    def __init__(self, name: str, reason: str, log_path: Path, log_tail: str) -> None:
        super().__init__(f"{name} failed to start: {reason}\n--- tail of {log_path} ---\n{log_tail}")
        self.name = name
        self.reason = reason
        self.log_tail = log_tail


def describe_exit(code: int) -> str:
    """Human wording for an asyncio return code (negative means killed by a signal)."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def read_log_tail(path: Path, offset: int = 0) -> str:
    """The last lines of ``path`` written after byte ``offset`` (this run's output only)."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(offset, size - _TAIL_BYTES))
            data = log.read()
    except FileNotFoundError:
        return ""
    lines = data.decode(errors="replace").splitlines()
    return "\n".join(lines[-_TAIL_LINES:])


def _die_with_parent() -> None:
    # Runs in the forked child before exec (after the switch to spec.user, which would
    # otherwise clear the setting).
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


async def _armed(pid: int, timeout_s: float = 2.0) -> None:
    """Wait until setpriv has set the parent-death signal, i.e. exec'd the command (or exited)."""
    setpriv = os.path.realpath(_SETPRIV or "")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.readlink(f"/proc/{pid}/exe") != setpriv:
                return
        except OSError:  # gone already: its exit is reported as usual
            return
        await asyncio.sleep(0.002)


def run_as_kwargs(user: str | None) -> dict[str, object]:
    """Keyword arguments for asyncio/subprocess process creation to run as ``user``."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def as_user(argv: Sequence[str], user: str | None, *, die_with_parent: bool = False) -> tuple[list[str], dict]:
    """``argv`` and process-creation keyword arguments that run it as ``user`` (and, through
    setpriv, kill it with its parent). setpriv switches the user itself: asked of Popen, the
    switch would rule out vfork, and a plain fork runs gRPC's at-fork handlers in the child,
    which crash now and then. Without setpriv, Popen switches, and the death signal is the
    caller's to set (:meth:`ChildProcess.start` passes a ``preexec_fn``)."""
    if _SETPRIV is None:
        return list(argv), run_as_kwargs(user)
    flags = ["--pdeathsig", "KILL"] if die_with_parent else []
    if user is not None:
        entry = pwd.getpwnam(user)
        flags += ["--reuid", str(entry.pw_uid), "--regid", str(entry.pw_gid), "--clear-groups"]
    return ([_SETPRIV, *flags, "--", *argv] if flags else list(argv)), {}


class ChildProcess:
    """One supervised child; :meth:`start` again after a stop or a failure restarts it."""

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self._proc: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._state = ChildState.STOPPED
        self._exit_code: int | None = None
        self._reason: str | None = None
        self._log_offset = 0
        # Set when a run that had become ready exits on its own; cleared by the next start.
        self._crashed = asyncio.Event()

    @property
    def name(self) -> str:
        return self.spec.name

    async def crashed(self) -> None:
        """Wait until the current run, once ready, exits without being asked to stop."""
        await self._crashed.wait()

    @property
    def pid(self) -> int | None:
        """The child's PID while it runs."""
        if self._proc is None or self._proc.returncode is not None:
            return None
        return self._proc.pid

    def log_tail(self) -> str:
        return read_log_tail(self.spec.log_path, self._log_offset)

    def status(self) -> ChildStatus:
        failed = self._state is ChildState.FAILED
        return ChildStatus(
            name=self.name,
            state=self._state,
            pid=self.pid,
            exit_code=self._exit_code,
            reason=self._reason if failed else None,
            log_tail=self.log_tail() if failed else "",
        )

    def check_startable(self) -> None:
        """Raise RuntimeError while a run is starting, running or stopping (a second start
        would, say, clear the lock of a live server); the supervisor may have restarted it."""
        if self._state in (ChildState.STARTING, ChildState.HEALTHY, ChildState.STOPPING):
            raise RuntimeError(f"{self.name} is already {self._state}")

    async def start(self) -> None:
        """Launch the child and wait until its probe says ready; raise ChildStartError if not."""
        self.check_startable()
        # A previous run that crashed may still be cleaning up its process group.
        await self.stop()
        self._state = ChildState.STARTING
        self._exit_code = None
        self._reason = None
        self._crashed.clear()
        try:
            if self.spec.pidfile is not None:
                stale = await end_stale(
                    self.spec.pidfile,
                    Path(self.spec.argv[0]).name,
                    self.spec.stop_signal,
                    self.spec.stop_timeout_s,
                )
                if stale is not None:
                    logger.warning("%s: ended stale process %d from a previous run", self.name, stale)
            await self._launch()
            await self._await_ready()
        except ChildStartError as exc:
            await self.stop()
            self._state = ChildState.FAILED
            self._reason = exc.reason
            raise
        except BaseException:
            # Cancelled (Ctrl-C) or an unexpected error: leave nothing running.
            await self.stop()
            raise
        self._state = ChildState.HEALTHY
        logger.info("%s is ready (pid %s)", self.name, self.pid)

    async def stop(self) -> None:
        """Stop the child by its PID: stop signal, ``stop_timeout_s``, then SIGKILL.

        Also ends whatever is left in its process group. A failed child keeps its failed
        status (so it is still reported); otherwise the state becomes STOPPED.
        """
        proc, watcher = self._proc, self._watcher
        if proc is None or watcher is None:
            return
        if proc.returncode is None:
            self._state = ChildState.STOPPING
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.spec.stop_signal)
            try:
                await asyncio.wait_for(asyncio.shield(watcher), self.spec.stop_timeout_s)
            except TimeoutError:
                logger.warning("%s did not stop within %.1fs; killing it", self.name, self.spec.stop_timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        await watcher
        await end_group(proc.pid)
        self._remove_pidfile()
        self._proc = None
        self._watcher = None
        if self._state is not ChildState.FAILED:
            self._state = ChildState.STOPPED

    async def _launch(self) -> None:
        spec = self.spec
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n=== {stamp} starting {shlex.join(spec.argv)} ===\n".encode())
            log.flush()
            self._log_offset = log.tell()
            if _SETPRIV is not None and shutil.which(spec.argv[0]) is None:
                # setpriv would start and then fail to exec; say it plainly instead.
                raise ChildStartError(self.name, f"could not run {spec.argv[0]}: not found", spec.log_path, "")
            argv, run_as = as_user(spec.argv, spec.user, die_with_parent=True)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    env={**os.environ, **spec.env},
                    cwd=spec.cwd,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if _SETPRIV is None else None,
                    **run_as,  # type: ignore[arg-type]
                )
            except OSError as exc:
                raise ChildStartError(self.name, f"could not run {spec.argv[0]}: {exc}", spec.log_path, "") from exc
        if _SETPRIV is not None:
            await _armed(proc.pid)
        self._proc = proc
        self._watcher = asyncio.create_task(self._watch(proc), name=f"watch-{self.name}")
        if spec.pidfile is not None:
            spec.pidfile.parent.mkdir(parents=True, exist_ok=True)
            spec.pidfile.write_text(f"{proc.pid}\n")

    async def _await_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.spec.ready_timeout_s
        last_error: Exception | None = None
        while True:
            if self._state is ChildState.FAILED:
                raise self._start_error(self._reason or "exited")
            remaining = deadline - loop.time()
            try:
                ready = await asyncio.wait_for(self.spec.ready(), max(0.1, min(_PROBE_TIMEOUT_S, remaining)))
            except Exception as exc:
                # Refused connections and the like just mean "not ready yet".
                ready, last_error = False, exc
            if ready and self._state is ChildState.STARTING:
                return
            if loop.time() >= deadline and self._state is ChildState.STARTING:
                reason = f"not ready after {self.spec.ready_timeout_s:g}s"
                if last_error is not None:
                    reason += f" (last probe error: {last_error!r})"
                raise self._start_error(reason)
            await asyncio.sleep(_READY_POLL_S)

    def _start_error(self, reason: str) -> ChildStartError:
        return ChildStartError(self.name, reason, self.spec.log_path, self.log_tail())

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self._state is ChildState.STOPPING:
            return
        was_healthy = self._state is ChildState.HEALTHY
        self._exit_code = code
        self._reason = describe_exit(code)
        self._state = ChildState.FAILED
        if was_healthy:
            # During start-up the ChildStartError raised by start() reports it instead.
            logger.error(
                "%s %s unexpectedly; tail of %s:\n%s",
                self.name,
                self._reason,
                self.spec.log_path,
                self.log_tail(),
            )
        # Helpers of a crashed server would keep its ports or shared memory busy.
        await end_group(proc.pid)
        self._remove_pidfile()
        if was_healthy:
            self._crashed.set()

    def _remove_pidfile(self) -> None:
        if self.spec.pidfile is not None:
            self.spec.pidfile.unlink(missing_ok=True)
