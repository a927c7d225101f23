"""Task events: what a processing task tells its watchers, in order.

They are msgspec structs tagged by type, so the event log (a Redis stream) stores them as
compact JSON and decodes them back to the right type. The gRPC edge turns them into protobuf.

Example:
    >>> raw = encode_event(BatchProcessingComplete(sub_video_batch_index=1))
    >>> decode_event(raw)
    BatchProcessingComplete(sub_video_batch_index=1)
"""

from __future__ import annotations

import enum

import msgspec


class TaskState(enum.StrEnum):
    QUEUED = "queued"
    PREPARING = "preparing"
    PROCESSING = "processing"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


class StatusUpdate(msgspec.Struct, tag="status_update", frozen=True):
    state: TaskState
    progress: float
    step: str
    error: str = ""


class MediaUrl(msgspec.Struct, frozen=True):
    camera_id: str
    sub_video_filename: str
    url: str
    start_global_frame_index: int
    num_frames_in_sub_video: int
    fps: float


class MediaAvailable(msgspec.Struct, tag="media_available", frozen=True):
    sub_video_batch_index: int
    media_urls: list[MediaUrl]


class TrackOut(msgspec.Struct, frozen=True, array_like=True):
    """One track in one camera frame; array_like keeps tracking updates small."""

    box: tuple[float, float, float, float]
    score: float
    track_id: int
    global_id: int
    map_coords: tuple[float, float] | None


class CameraTracksOut(msgspec.Struct, frozen=True):
    camera_id: str
    image_source: str
    frame_index_in_source: int
    tracks: list[TrackOut]


class TrackingUpdate(msgspec.Struct, tag="tracking_update", frozen=True):
    global_frame_index: int
    environment_id: str
    timestamp_processed_utc: float
    cameras: list[CameraTracksOut]


class TracksRefined(msgspec.Struct, tag="tracks_refined", frozen=True):
    """The refined tracks of frames ``start_global_frame_index`` .. ``end_global_frame_index - 1``.

    Recorded video is refined after each window (a sub-video batch, or a slice of a long one):
    these updates, one per frame of the range, replace the ``tracking_update`` events of those
    frames and are what the exports and the history hold. One window may take several
    events, in frame order.
    """

    sub_video_batch_index: int
    start_global_frame_index: int
    end_global_frame_index: int
    updates: list[TrackingUpdate]


class BatchProcessingComplete(msgspec.Struct, tag="batch_processing_complete", frozen=True):
    sub_video_batch_index: int


class FocusUpdate(msgspec.Struct, tag="focus_update", frozen=True):
    """The global person id dashboards should highlight; 0 clears the focus."""

    global_id: int


class ZoneEvent(msgspec.Struct, tag="zone_event", frozen=True):
    """A global person id entered or left a zone of the environment's floor plan."""

    kind: str  # "enter" or "exit"
    zone_id: str
    zone_name: str
    global_id: int
    global_frame_index: int
    camera_id: str
    map_coords: tuple[float, float]


TaskEventPayload = (
    StatusUpdate | MediaAvailable | TrackingUpdate | TracksRefined | BatchProcessingComplete | FocusUpdate | ZoneEvent
)


class TaskEvent(msgspec.Struct, frozen=True):
    sequence: int
    task_id: str
    emitted_at: float
    payload: TaskEventPayload


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(TaskEventPayload)


def encode_event(payload: TaskEventPayload) -> bytes:
    return _encoder.encode(payload)


def decode_event(raw: bytes) -> TaskEventPayload:
    return _decoder.decode(raw)
