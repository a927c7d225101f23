"""The ports of the task services: what they call in PostgreSQL, Redis, Triton and the pipeline.

Each is a Protocol the adapters satisfy as they are (``storage/postgres.py``,
``storage/redis_events.py``, ``storage/event_outbox.py``, ...); ``task_setup.py`` in the
composition root builds the task services over them. The errors and values that cross a
port (:class:`EnvironmentBusy`, :class:`TaskStateUpdate`, :class:`TaskRun`) live here, so an
adapter imports them from the service side, never the other way round.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Protocol

from spoton_inference.domain.environment import Camera, Environment
from spoton_inference.domain.events import TaskEvent, TaskEventPayload, TaskState
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.domain.zones import Zone
from spoton_inference.services.idempotency import KeyClaim, KeyHolder

# Errors an adapter raises that a service catches, passed in by the composition root: e.g. what
# Redis raises when it cannot be reached right now (down or frozen), the outages services ride out.
ErrorTypes = tuple[type[BaseException], ...]


class EnvironmentBusy(Exception):
    """A start without ``concurrent`` found an unfinished task over the environment (``running``)."""

    def __init__(self, running: TaskRecord) -> None:
        super().__init__(f"task {running.task_id} over {running.environment_id!r} is unfinished")
        self.running = running


@dataclasses.dataclass(frozen=True, slots=True)
class TaskStateUpdate:
    """A task's state as its runner last reported it, to be stored."""

    task_id: str
    state: TaskState
    progress: float
    step: str
    frames_processed: int
    error: str = ""


class TaskRecords(Protocol):
    """Task records in PostgreSQL."""

    async def insert_task(
        self,
        environment_id: str,
        camera_ids: list[str],
        total_frames: int,
        *,
        claim: KeyClaim | None = None,
        concurrent: bool = False,
    ) -> TaskRecord:
        """KeyTaken when ``claim``'s key is held; EnvironmentBusy when not ``concurrent`` and the
        environment has an unfinished task."""
        ...

    async def get_task(self, task_id: str) -> TaskRecord | None: ...

    async def list_tasks(
        self,
        *,
        limit: int,
        before: tuple[dt.datetime, str] | None = None,
        environment_id: str = "",
        state: TaskState | None = None,
        environment_ids: Collection[str] | None = None,
    ) -> list[TaskRecord]: ...

    async def fail_unfinished_tasks(self, reason: str, task_ids: Sequence[str]) -> list[str]: ...

    async def task_track_points(self, task_id: str) -> Sequence[Any]:
        """Rows of camera, frame, ids, box, score and map point, in frame order."""
        ...


class KeyLookup(Protocol):
    """Idempotency keys (storage/idempotency_store.py)."""

    async def lookup(self, claim: KeyClaim) -> KeyHolder | None: ...


class TaskStates(Protocol):
    """Task-state writes that a PostgreSQL outage cannot fail (storage/task_states.py)."""

    async def write(self, update: TaskStateUpdate) -> None: ...

    async def close(self) -> None: ...


class EventLog(Protocol):
    """Tasks' event streams and live state, as read from Redis (storage/redis_events.py)."""

    async def read(self, task_id: str, after: int, block_ms: int = 1000, count: int = 500) -> list[TaskEvent]: ...

    async def last_sequence(self, task_id: str) -> int: ...

    async def newest(self, task_id: str) -> TaskEvent | None: ...

    async def get_live_state(self, task_id: str) -> dict[str, str]: ...


class EventPublisher(Protocol):
    """Events and live state on their way to Redis, held while it is away (storage/event_outbox.py)."""

    @property
    def holding(self) -> bool:
        """Whether Redis is known to be away (things wait in the outbox)."""
        ...

    async def append(self, task_id: str, payload: TaskEventPayload) -> None: ...

    async def set_live_state(self, task_id: str, fields: dict[str, str | int | float]) -> None: ...


class EventWaits(Protocol):
    """Waits for new events, shared by a task's watchers (storage/redis_watch.py)."""

    async def wait_past(self, task_id: str, after: int) -> None: ...

    async def close(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class ControlRequest:
    """A pause, resume or cancel (``TaskAction``'s value) for the replica that runs the task."""

    task_id: str
    action: str
    focus_global_id: int = 0


class ControlRelay(Protocol):
    """Passes a control to the replica running the task (storage/control_relay.py)."""

    async def forward(self, owner: str, request: ControlRequest) -> None:
        """Apply ``request`` on replica ``owner``; raises the domain error the owner raised, or
        Unavailable when it does not answer."""
        ...


class Lease(Protocol):
    """This replica's lease, and whether other replicas still hold theirs (storage/replicas.py)."""

    @property
    def replica_id(self) -> str: ...

    @property
    def ttl_s(self) -> float: ...

    async def alive(self, replica: str) -> bool: ...

    def on_lost(self, callback: Callable[[], object]) -> None:
        """Have ``callback`` called once each time this replica's lease goes unrenewed for
        longer than ``ttl_s`` (another replica may then fail its tasks over)."""
        ...


class ModelsReadiness(Protocol):
    """Triton's readiness, by model (and ``server``)."""

    async def ready(self) -> dict[str, bool]: ...


class Environments(Protocol):
    """The catalogue's environments (services/catalog.py)."""

    def get(self, environment_id: str) -> Environment: ...


@dataclasses.dataclass(frozen=True, slots=True)
class TaskRun:
    """What a task's runner gets from the task service: the work, and how to report on it."""

    task_id: str
    environment: Environment
    cameras: tuple[Camera, ...]
    created_at: dt.datetime
    zones: tuple[Zone, ...]
    # Overrides SPOTON_DETECTION_THRESHOLD for this task; None: the setting.
    detection_threshold: float | None
    exports_dir: Path
    emit: Callable[[TaskEventPayload], Awaitable[None]]
    # (frames done, step): "preparing ..." steps are PREPARING, the others PROCESSING.
    report_progress: Callable[[int, str], Awaitable[None]]
    # Returns at once unless the task is paused; then when it is resumed.
    wait_if_paused: Callable[[], Awaitable[None]]
    # A non-empty reason while the runner waits for Triton, "" once Triton answers again.
    on_triton_wait: Callable[[str], Awaitable[None]]


class TaskRunner(Protocol):
    """One task's run: recorded batches to their end, or live pulls until cancelled."""

    @property
    def frames_done(self) -> int: ...

    async def run(self) -> None:
        """Run, then flush what the run stored; cancelled to stop."""
        ...


class TaskRunners(Protocol):
    """Builds task runners over the pipeline (pipeline/runner.py, pipeline/live_runner.py)."""

    def total_frames(self, cameras: tuple[Camera, ...]) -> int:
        """Global frames a task over ``cameras`` processes; 0 for live cameras."""
        ...

    def build(self, run: TaskRun) -> TaskRunner: ...
