"""What a camera shard tells the association of its task: frames, marks, batch ends, failure.

A shard (:mod:`spoton_inference.pipeline.camera_shard`) tracks some of a task's cameras, in
the task's own process or on another replica; these are the messages it sends, in order, and
what the association (:mod:`spoton_inference.pipeline.frame_merge`) reads back. They carry
exactly what the shard's trackers gave, so the association sees the same input wherever the
cameras ran.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spoton_inference.tracking.appearance import ReidCalibration
from spoton_inference.tracking.multicam import CameraFrame


@dataclasses.dataclass(frozen=True, slots=True)
class CameraView:
    """One camera at one global frame, as tracked by its shard."""

    source: str  # the sub-video's file name
    index_in_source: int
    boxes: np.ndarray  # every detection, Nx4 (exports and refinement)
    scores: np.ndarray
    tracked: CameraFrame


@dataclasses.dataclass(frozen=True, slots=True)
class ShardFrame:
    global_index: int
    cameras: dict[str, CameraView]


@dataclasses.dataclass(frozen=True, slots=True)
class Mark:
    """The shard has sent every frame it has before ``next_index``."""

    next_index: int


@dataclasses.dataclass(frozen=True, slots=True)
class BatchEnd:
    batch: int


@dataclasses.dataclass(frozen=True, slots=True)
class ShardFailed:
    """The shard stopped; the task fails with this reason."""

    reason: str


ShardMessage = ShardFrame | Mark | BatchEnd | ShardFailed


@dataclasses.dataclass(frozen=True, slots=True)
class Progress:
    """How far a task's association has come, as its shards are told."""

    through: int  # every frame up to this one is processed (or no camera has it)
    last_frame: int  # the latest frame it processed
    calibration: ReidCalibration | None  # its last refit's (None before any)


class ShardError(RuntimeError):
    """A shard stopped with a reason (the task fails with it)."""
