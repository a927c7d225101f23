"""Live frames: one tracking session per client stream, with bounded back-pressure.

A client streams frames of one environment's cameras and gets each processed frame's
tracks back. Between the reader of the client's frames and the pipeline sits a
:class:`FrameBuffer` of a few frames; when the client sends faster than the pipeline
keeps up, the *oldest* waiting frame is dropped and counted, and the count rides on the
next result. Dropping the oldest keeps what is answered as fresh as possible (a live
client wants to know where people are now, and answers to ever staler frames would lag
further and further behind), and keeps latency bounded by the buffer's size.

The session is per stream, not per environment: a stream's tracker state is its own, so
a cancelled or failing stream cannot disturb another one, and nothing is shared across
streams that would need locking. A client that wants cross-camera global ids sends all
cameras of the site over one stream (each frame names its camera).

Per frame: decode (JPEG/PNG in a worker thread; raw BGR is a view, no copy) -> detect
(Triton) -> plan -> embed the crops the tracker asks for (one Triton call) -> update
(local ids, map coordinates, global ids). Nothing here knows about gRPC; the servicer in
``grpc_api/streaming.py`` converts messages to and from these dataclasses.

Example (the buffer alone):
    >>> import asyncio
    >>> async def demo():
    ...     buf = FrameBuffer(2)
    ...     for i in range(4):
    ...         buf.put(i)  # 0 and 1 are dropped when 2 and 3 arrive
    ...     buf.close()
    ...     return [await buf.get(), await buf.get(), await buf.get()]
    >>> asyncio.run(demo())
    [(2, 2), (3, 0), None]
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

import numpy as np

from spoton_inference.core.detection import decode_encoded, decode_raw
from spoton_inference.core.environment import Environment
from spoton_inference.core.errors import InvalidArgument, NotFound, Unavailable
from spoton_inference.core.image_header import DEFAULT_MAX_IMAGE_PIXELS, announced_size, check_pixels
from spoton_inference.pipeline.tracking_settings import TrackingSetup
from spoton_inference.pipeline.triton_models import TritonModels, crop_people
from spoton_inference.tracking.camera import FramePlan

log = logging.getLogger(__name__)
T = TypeVar("T")

# Frames that may wait for the pipeline per stream. Small on purpose: each waiting frame is
# latency added to every answer, and memory (up to the gRPC message limit each).
DEFAULT_QUEUE_FRAMES = 2
READER_TASK_PREFIX = "live-reader"


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


@dataclasses.dataclass(slots=True)
class LiveStats:
    """Counters across all live streams of the service, for health and metrics."""

    open_streams: int = 0
    frames_received: int = 0
    frames_answered: int = 0
    frames_dropped: int = 0
    # Most frames ever waiting in one stream's buffer: never above its capacity.
    max_queue_depth: int = 0

    def describe(self) -> str:
        return (
            f"{self.open_streams} open, {self.frames_received} frames received, "
            f"{self.frames_answered} answered, {self.frames_dropped} dropped by back-pressure"
        )


class FrameBuffer(Generic[T]):
    """A bounded FIFO between one producer and one consumer that drops its oldest item when full.

    ``get`` returns each item with the number dropped since the previous ``get``, so the
    consumer can report drops on the next answer. ``close(error)`` lets the consumer drain
    what is already buffered before it sees the end (None) or the error.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: collections.deque[T] = collections.deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._dropped_since_get = 0
        self.dropped_total = 0
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T) -> T | None:
        """Add ``item``; returns the item dropped to make room, if any."""
        if self._closed:
            raise RuntimeError("put on a closed FrameBuffer")
        dropped = None
        if len(self._items) >= self.capacity:
            dropped = self._items.popleft()
            self._dropped_since_get += 1
            self.dropped_total += 1
        self._items.append(item)
        self.high_water = max(self.high_water, len(self._items))
        self._ready.set()
        return dropped

    def close(self, error: BaseException | None = None) -> None:
        """No more items; the first close wins."""
        if not self._closed:
            self._closed, self._error = True, error
            self._ready.set()

    async def get(self) -> tuple[T, int] | None:
        """The oldest item and the drops since the last get; None once closed and drained."""
        while not self._items and not self._closed:
            self._ready.clear()
            await self._ready.wait()
        if self._items:
            dropped, self._dropped_since_get = self._dropped_since_get, 0
            return self._items.popleft(), dropped
        if self._error is not None:
            raise self._error
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class _Admitted:
    frame: LiveFrame
    rgb: np.ndarray | None  # raw frames are checked and viewed on arrival; encoded ones decode later
    sequence: int
    camera_count: int  # this camera's frames before this one, dropped ones included
    received_at: float


class LiveSession:
    """Tracking state of one live stream over one environment's cameras."""

    def __init__(
        self,
        environment: Environment,
        models: TritonModels,
        tracking: Callable[[float], TrackingSetup],
        stats: LiveStats | None = None,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    ) -> None:
        """``tracking(fps)``: how to track, as tasks get it (``pipeline.tracking_settings.tracking_setup``
        over the service settings). Live output is online: it is never refined. Frames whose
        size is over ``max_image_pixels`` are refused on arrival, before decoding."""
        if not environment.cameras:
            raise NotFound(f"environment {environment.environment_id!r} has no cameras to stream")
        self.environment = environment
        self.models = models
        self.stats = stats or LiveStats()
        self.queue_frames = queue_frames
        self.max_image_pixels = max_image_pixels
        self._cameras = {c.camera_id: c for c in environment.cameras}
        # One clock for the stream, as a task uses its first camera's fps for the whole environment.
        self.fps = environment.cameras[0].fps
        setup = tracking(self.fps)
        self._tracker_config = setup.tracker
        self._tracker = setup.multicam(environment.cameras)
        self._t0: float | None = None
        self._last_index = 0

    async def stream(self, frames: AsyncIterator[LiveFrame]) -> AsyncIterator[LiveResult]:
        """Results for ``frames``, in order, dropping the oldest waiting frames under back-pressure.

        A bad frame (or any error raised by ``frames``) is raised after the frames before it
        are answered. Closing this generator, or cancelling its consumer, cancels the reader.
        """
        buffer: FrameBuffer[_Admitted] = FrameBuffer(self.queue_frames)
        reader = asyncio.create_task(
            self._read(frames, buffer), name=f"{READER_TASK_PREFIX}-{self.environment.environment_id}"
        )
        self.stats.open_streams += 1
        answered = 0
        try:
            while (item := await buffer.get()) is not None:
                admitted, dropped = item
                yield await self._process(admitted, dropped, buffer.dropped_total)
                answered += 1
                self.stats.frames_answered += 1
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self.stats.open_streams -= 1
            log.info(
                "live stream on %s closed: %d answered, %d dropped by back-pressure",
                self.environment.environment_id,
                answered,
                buffer.dropped_total,
            )

    async def _read(self, frames: AsyncIterator[LiveFrame], buffer: FrameBuffer[_Admitted]) -> None:
        """Admit frames as fast as they come; the buffer, not the client, decides what waits."""
        counts: collections.Counter[str] = collections.Counter()
        sequence = 0
        try:
            async for frame in frames:
                admitted = self._admit(frame, sequence, counts[frame.camera_id])
                counts[frame.camera_id] += 1
                sequence += 1
                self.stats.frames_received += 1
                if buffer.put(admitted) is not None:
                    self.stats.frames_dropped += 1
                self.stats.max_queue_depth = max(self.stats.max_queue_depth, len(buffer))
        except Exception as exc:  # handed to the consumer, after what came before it
            buffer.close(exc)
        except asyncio.CancelledError:
            # Only stream() cancels us on purpose (its consumer is gone by then); any other
            # cancellation must not pass for a half-close.
            buffer.close(Unavailable("reading the client's frames was interrupted"))
            raise
        finally:
            buffer.close()

    def _admit(self, frame: LiveFrame, sequence: int, camera_count: int) -> _Admitted:
        """Cheap checks on arrival, so a malformed frame fails the stream even if it would be dropped."""
        if frame.camera_id not in self._cameras:
            known = ", ".join(self._cameras)
            raise NotFound(
                f"camera {frame.camera_id!r} is not in environment {self.environment.environment_id!r} "
                f"(its cameras: {known})"
            )
        rgb = None
        if not isinstance(frame.image, RawPixels) and not frame.image:
            raise InvalidArgument(
                f"frame {sequence} (camera {frame.camera_id!r}) has no image: "
                "set `encoded` (JPEG/PNG bytes) or `raw` (BGR pixels with width and height)"
            )
        try:
            if isinstance(frame.image, RawPixels):
                rgb = decode_raw(frame.image.data, frame.image.width, frame.image.height, self.max_image_pixels)
            else:  # the header alone: decoding waits for the pipeline
                check_pixels(*announced_size(frame.image), self.max_image_pixels)
        except InvalidArgument as exc:
            raise InvalidArgument(f"frame {sequence} (camera {frame.camera_id!r}): {exc}") from exc
        return _Admitted(frame, rgb, sequence, camera_count, time.time())

    async def _process(self, item: _Admitted, dropped: int, dropped_total: int) -> LiveResult:
        frame, cam = item.frame, item.frame.camera_id
        rgb = item.rgb
        if rgb is None:
            try:
                rgb = await asyncio.to_thread(decode_encoded, frame.image, self.max_image_pixels)  # type: ignore[arg-type]
            except InvalidArgument as exc:
                raise InvalidArgument(f"frame {item.sequence} (camera {cam!r}): {exc}") from exc
        # Down to the tracker's low score: weak detections extend tracks, never start them.
        det = await self.models.detect(rgb, self._tracker_config.low_score)
        plans = self._tracker.plan({cam: (det.boxes, det.scores)})
        embeddings = await self._embed(rgb, cam, plans[cam])
        index = self._frame_index(item)
        tracks = self._tracker.update(index, plans, embeddings)[cam]
        return LiveResult(
            environment_id=self.environment.environment_id,
            camera_id=cam,
            frame_id=frame.frame_id,
            sequence=item.sequence,
            timestamp=frame.timestamp if frame.timestamp is not None else item.received_at,
            global_frame_index=index,
            processed_at=time.time(),
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            tracks=tuple(
                LiveTrack(
                    t.track_id,
                    t.global_id,
                    tuple(round(float(v), 2) for v in t.box),  # type: ignore[arg-type]
                    round(float(t.score), 4),
                    t.map_xy,
                )
                for t in tracks
            ),
            dropped_frames=dropped,
            dropped_frames_total=dropped_total,
        )

    async def _embed(self, rgb: np.ndarray, cam: str, plan: FramePlan) -> dict[str, dict[int, np.ndarray]]:
        if not plan.needs_embedding:
            return {}
        wanted = list(plan.needs_embedding)
        vectors = await self.models.embed(crop_people(rgb, plan.boxes[wanted]))
        return {cam: dict(zip(wanted, vectors, strict=True))}

    def _frame_index(self, item: _Admitted) -> int:
        """The tracker's clock: timestamps when the client sends them, else the camera's nominal fps.

        Never goes back, since identities remember the last frame they were seen in.
        """
        if item.frame.timestamp is not None:
            if self._t0 is None:
                self._t0 = item.frame.timestamp
            index = round((item.frame.timestamp - self._t0) * self.fps)
        else:
            index = round(item.camera_count * self.fps / self._cameras[item.frame.camera_id].fps)
        self._last_index = max(self._last_index, index)
        return self._last_index
