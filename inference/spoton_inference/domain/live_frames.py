"""Live frames and what a live stream answers for each: the records between a client's
stream (the gRPC edge), the live-streams service and the pipeline's tracking session.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class RawPixels:
    """Uncompressed BGR pixels, row-major, height x width x 3."""

    data: bytes
    width: int
    height: int


@dataclasses.dataclass(frozen=True, slots=True)
class LiveFrame:
    """One frame as the client sent it."""

    camera_id: str
    image: bytes | RawPixels  # JPEG/PNG bytes, or raw BGR
    timestamp: float | None = None  # capture time, seconds since the epoch, on the client's clock
    frame_id: int = 0  # the client's own id, echoed


@dataclasses.dataclass(frozen=True, slots=True)
class LiveTrack:
    track_id: int
    global_id: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 pixels
    score: float
    map_xy: tuple[float, float] | None


@dataclasses.dataclass(frozen=True, slots=True)
class LiveResult:
    """The answer to one processed frame."""

    environment_id: str
    camera_id: str
    frame_id: int
    sequence: int  # 0-based position in the stream, dropped frames included
    timestamp: float  # the frame's timestamp, else when it was received
    global_frame_index: int
    processed_at: float
    width: int
    height: int
    tracks: tuple[LiveTrack, ...]
    dropped_frames: int  # since the previous result
    dropped_frames_total: int
