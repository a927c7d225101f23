"""A processing task as stored: what the catalogue of tasks answers and the edges convert."""

from __future__ import annotations

import dataclasses
import datetime as dt

from spoton_inference.domain.events import TaskState


@dataclasses.dataclass(frozen=True, slots=True)
class TaskRecord:
    task_id: str
    environment_id: str
    camera_ids: tuple[str, ...]
    state: TaskState
    progress: float
    step: str
    error: str
    frames_processed: int
    total_frames: int
    created_at: dt.datetime
    updated_at: dt.datetime
