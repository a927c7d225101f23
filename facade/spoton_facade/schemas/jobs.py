"""The REST contract of ``/api/v1/jobs``: ``spoton.v1`` job messages as JSON bodies.

Built with :func:`spoton_facade.schemas.base.from_proto`, so field names follow the ``.proto``.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

import msgspec

from spoton_facade.schemas.analytics import Zone, ZoneBody
from spoton_facade.schemas.catalog import HomographyBody

# s3://bucket/key; the service checks the bucket name and key.
S3_OBJECT_URI = r"^s3://[^/]+/.+"


class JobStateName(enum.StrEnum):
    """``spoton.v1.JobState`` without its prefix; a test keeps the two in step."""

    UNSPECIFIED = "unspecified"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobResultKindName(enum.StrEnum):
    """``spoton.v1.JobResultKind`` without its prefix."""

    UNSPECIFIED = "unspecified"
    VIDEO = "video"
    EVENTS = "events"
    TRACKS = "tracks"


class VideoInfo(msgspec.Struct):
    """``spoton.v1.VideoInfo``: what the decode probe found in the upload."""

    container: str
    codec: str
    width: int
    height: int
    fps: float
    duration_s: float
    frames: int


class JobResult(msgspec.Struct):
    """``spoton.v1.JobResult``; ``url`` is served by the media route, with Range."""

    kind: JobResultKindName
    name: str
    media_type: str
    size_bytes: int
    url: str
    media_path: str


class Job(msgspec.Struct):
    """``spoton.v1.Job``."""

    job_id: str
    name: str
    filename: str
    state: JobStateName
    # 0..1 over the whole job.
    progress: float
    step: str
    error: str
    # Processing speed (frames_processed / processing_seconds), kept after the job ends.
    frames_per_second: float
    # Never goes back; rendering counts in frames_rendered.
    frames_processed: int
    total_frames: int
    size_bytes: int
    video: VideoInfo | None
    environment_id: str
    camera_id: str
    task_id: str
    has_homography: bool
    results: list[JobResult]
    attempts: int
    revision: int
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    # Seconds left, from the current step's measured rate; 0 when not yet known, and once over.
    eta_seconds: float = 0.0
    # Rendering speed (frames_rendered / rendering_seconds), kept after the job ends.
    rendering_frames_per_second: float = 0.0
    frames_rendered: int = 0
    # Seconds each step took so far, and since the job started running (to its end once over).
    processing_seconds: float = 0.0
    rendering_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    fps_override: float | None = None
    detection_threshold: float | None = None
    # The zones given at upload; their entries and exits are in the events JSON.
    zones: list[Zone] = []


class JobPage(msgspec.Struct):
    """``spoton.v1.ListJobsResponse``; an empty ``next_page_token`` means the last page."""

    jobs: list[Job]
    next_page_token: str


class JobSourceBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/jobs/:fetch``: a video in the server's object storage, instead of an upload;
    the other fields are those of the upload form."""

    source: Annotated[str, msgspec.Meta(pattern=S3_OBJECT_URI, max_length=1100, examples=["s3://recordings/lobby.mp4"])]
    name: Annotated[str, msgspec.Meta(max_length=255)] = ""
    fps: Annotated[float, msgspec.Meta(gt=0, le=1000)] | None = None
    detection_threshold: Annotated[float, msgspec.Meta(gt=0, lt=1)] | None = None
    homography: HomographyBody | None = None
    zones: list[ZoneBody] = []
