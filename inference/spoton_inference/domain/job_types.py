"""What a job is made of: its state, what was asked at upload, the video, its results.

msgspec structs (and the catalog's HomographySpec dataclass, which msgspec handles alike), so
the stored JSON columns (``video``, ``options``, ``results``) decode back to these types.
"""

from __future__ import annotations

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
