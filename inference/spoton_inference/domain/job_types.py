"""What a job is made of: its state, what was asked at upload, the video, its results, and
the record of it as stored (:class:`JobRecord`).

msgspec structs (and the catalog's HomographySpec dataclass, which msgspec handles alike), so
the stored JSON columns (``video``, ``options``, ``results``) decode back to these types.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

import msgspec

from spoton_inference.domain.geometry import HomographySpec


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


class ResultKind(enum.StrEnum):
    VIDEO = "video"
    EVENTS = "events"
    TRACKS = "tracks"


class VideoInfo(msgspec.Struct, frozen=True):
    """What the decode probe found in an upload."""

    container: str
    codec: str
    width: int
    height: int
    fps: float
    duration_s: float
    frames: int


class JobZone(msgspec.Struct, frozen=True):
    """A zone given at upload (polygon in map metres), created on the job's environment when it runs."""

    zone_id: str
    name: str
    polygon: tuple[tuple[float, float], ...]


class JobOptions(msgspec.Struct, frozen=True):
    """What the uploader asked for; ``None`` means the service's default."""

    fps: float | None = None
    detection_threshold: float | None = None
    homography: HomographySpec | None = None
    zones: tuple[JobZone, ...] = ()


class JobResult(msgspec.Struct, frozen=True):
    kind: ResultKind
    name: str
    media_type: str
    size_bytes: int
    # Relative to the media root, where the facade serves it from.
    media_path: str


@dataclasses.dataclass(frozen=True, slots=True)
class JobRecord:
    job_id: str
    name: str
    filename: str
    state: JobState
    step: str
    error: str
    progress: float
    eta_seconds: float | None
    frames_per_second: float
    frames_processed: int
    total_frames: int
    size_bytes: int
    video: VideoInfo
    options: JobOptions
    environment_id: str
    camera_id: str
    task_id: str
    results: tuple[JobResult, ...]
    attempts: int
    revision: int
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    rendering_frames_per_second: float = 0.0
    frames_rendered: int = 0
    processing_seconds: float = 0.0
    rendering_seconds: float = 0.0

    def elapsed_seconds(self, now: dt.datetime) -> float:
        """Seconds since the job started running, until it ended once it has; 0 while queued."""
        return elapsed_seconds(self.started_at, self.finished_at, now)


def elapsed_seconds(started_at: dt.datetime | None, finished_at: dt.datetime | None, now: dt.datetime) -> float:
    """Seconds from ``started_at`` to ``finished_at``, or to ``now`` while unfinished; 0 unstarted.

    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> elapsed_seconds(t, None, t + dt.timedelta(seconds=7)), elapsed_seconds(t, t, t + dt.timedelta(1))
    (7.0, 0.0)
    >>> elapsed_seconds(None, None, t)
    0.0
    """
    if started_at is None:
        return 0.0
    return max(((finished_at or now) - started_at).total_seconds(), 0.0)


@dataclasses.dataclass(frozen=True, slots=True)
class NewJob:
    """An accepted upload, as it is first recorded (QUEUED)."""

    job_id: str
    name: str
    filename: str
    size_bytes: int
    video: VideoInfo
    options: JobOptions
    environment_id: str
    camera_id: str
