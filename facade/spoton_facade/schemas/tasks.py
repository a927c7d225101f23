"""Processing tasks: start and control bodies, the task record, pages of tasks and their exports."""

from __future__ import annotations

import datetime as dt
import enum

import msgspec

from spoton_facade.contract import Count32, Id


class TaskStateName(enum.StrEnum):
    """``spoton.v1.TaskState`` without its prefix; a test keeps the two in step."""

    UNSPECIFIED = "unspecified"
    QUEUED = "queued"
    PREPARING = "preparing"
    PROCESSING = "processing"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StartTaskBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/processing-tasks/start``."""

    environment_id: Id
    # Empty or absent means every camera of the environment.
    camera_ids: list[Id] = msgspec.field(default_factory=list)
    # Start even while another task over the environment is unfinished (else 409, naming it).
    allow_concurrent: bool = False


class TaskStarted(msgspec.Struct):
    """Where to follow a task that was just started."""

    task_id: str
    status_url: str
    events_url: str


class Task(msgspec.Struct):
    """``spoton.v1.Task``."""

    task_id: str
    environment_id: str
    camera_ids: list[str]
    state: TaskStateName
    progress: float
    step: str
    error: str
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    frames_processed: int
    total_frames: int
    last_sequence: int
    # The global person id dashboards should highlight; 0 for none.
    focus_global_id: int = 0


class TaskActionName(enum.StrEnum):
    """``spoton.v1.TaskAction`` without its prefix (less ``unspecified``); a test keeps them in step."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    FOCUS = "focus"


class ControlTaskBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/processing-tasks/{task_id}/control``."""

    action: TaskActionName
    # For ``focus``: the global person id to highlight; 0 clears the focus.
    global_id: Count32 = 0


class TaskPage(msgspec.Struct):
    """``spoton.v1.ListTasksResponse``; an empty ``next_page_token`` means the last page."""

    tasks: list[Task]
    next_page_token: str


class ExportFile(msgspec.Struct):
    """``spoton.v1.ExportFile``; ``url`` is served by the media route."""

    name: str
    size_bytes: int
    media_type: str
    url: str


class ExportList(msgspec.Struct):
    """``spoton.v1.ListTaskExportsResponse``."""

    files: list[ExportFile]
