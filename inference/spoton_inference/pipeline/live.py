"""Live frames: one tracking session per client stream, pipelined, with bounded back-pressure.

A client streams frames of one environment's cameras and gets each processed frame's
tracks back, in the order sent. Up to ``max_in_flight`` frames are worked on at once: each
is decoded and detected as soon as it arrives (detection needs no tracker state), while
the tracker takes the detected frames one at a time in order (plan, embed the crops it
asks for, update), so detecting frame n+1 overlaps tracking frame n, and the tracks are
the same as with one frame at a time. A client that keeps at most ``max_in_flight`` frames
unanswered never loses one.

Frames beyond that window wait in a :class:`FrameBuffer` of a few frames; when the client
sends faster than the pipeline keeps up, the *oldest* waiting frame is dropped and
counted, and the count rides on the next result (``dropped_frames``, and a gap of as many
in ``sequence``). Dropping the oldest keeps what is answered as fresh as possible (a live
client wants to know where people are now, and answers to ever staler frames would lag
further and further behind), and keeps latency and memory bounded: a stream holds at
most ``max_in_flight`` + ``queue_frames`` frames.

The session is per stream, not per environment: a stream's tracker state is its own, so
a cancelled or failing stream cannot disturb another one, and nothing is shared across
streams that would need locking. A client that wants cross-camera global ids sends all
cameras of the site over one stream (each frame names its camera).

Per frame: decode (JPEG/PNG in a worker thread; raw BGR is a view, no copy) -> detect
(Triton) -> [in order] plan -> embed the crops the tracker asks for (one Triton call) ->
update (local ids, map coordinates, global ids). Nothing here knows about gRPC; the servicer in
``grpc_api/inference.py`` converts messages to and from the records of ``domain/live_frames.py``.

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

from spoton_inference.domain.environment import Environment
from spoton_inference.domain.errors import InvalidArgument, NotFound, Unavailable
from spoton_inference.domain.image_header import DEFAULT_MAX_IMAGE_PIXELS, announced_size, check_pixels
from spoton_inference.domain.live_frames import LiveFrame, LiveResult, LiveTrack, RawPixels
from spoton_inference.pipeline.image_decode import decode_encoded, decode_raw
from spoton_inference.pipeline.tracking_settings import TrackingSetup
from spoton_inference.pipeline.triton_models import Detections, Models, crop_people
from spoton_inference.tracking.camera import FramePlan

log = logging.getLogger(__name__)
T = TypeVar("T")

# Frames that may wait beyond the in-flight window per stream. Small on purpose: each
# waiting frame is latency added to every answer, and memory (up to the gRPC message limit each).
DEFAULT_QUEUE_FRAMES = 2
# Frames worked on at once per stream (SPOTON_STREAM_MAX_IN_FLIGHT): enough to keep the
# detector busy while the tracker embeds; each is a concurrent Triton call and a decoded frame.
DEFAULT_MAX_IN_FLIGHT = 4
READER_TASK_PREFIX = "live-reader"
DISPATCHER_TASK_PREFIX = "live-dispatcher"
DETECT_TASK_PREFIX = "live-detect"


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

    def clear(self) -> list[T]:
        """Take every buffered item out (not counted as dropped)."""
        items = list(self._items)
        self._items.clear()
        return items

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


@dataclasses.dataclass(frozen=True, slots=True)
class _Detected:
    rgb: np.ndarray
    detections: Detections


@dataclasses.dataclass(frozen=True, slots=True)
class _InFlight:
    """A frame in the window: its detection started on arrival, its tracking still to come."""

    admitted: _Admitted
    dropped_before: int  # frames dropped between the previous frame in the window and this one
    detection: asyncio.Task[_Detected]


@dataclasses.dataclass(frozen=True, slots=True)
class _End:
    """No more frames; ``error`` (a bad frame, after those before it) to raise, if any."""

    error: BaseException | None = None


class LiveSession:
    """Tracking state of one live stream over one environment's cameras."""

    def __init__(
        self,
        environment: Environment,
        models: Models,
        tracking: Callable[[float], TrackingSetup],
        stats: LiveStats | None = None,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        """``tracking(fps)``: how to track, as tasks get it (``pipeline.tracking_settings.tracking_setup``
        over the service settings). Live output is online: it is never refined. Frames whose
        size is over ``max_image_pixels`` are refused on arrival, before decoding. At most
        ``max_in_flight`` frames are decoded, detected or tracked at once; ``queue_frames``
        more may wait, the oldest dropped beyond that."""
        if not environment.cameras:
            raise NotFound(f"environment {environment.environment_id!r} has no cameras to stream")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.environment = environment
        self.models = models
        self.stats = stats or LiveStats()
        self.queue_frames = queue_frames
        self.max_in_flight = max_in_flight
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
        """Results for ``frames``, in order, dropping the oldest waiting frames beyond the window.

        A bad frame (or any error raised by ``frames``) is raised after the frames before it
        are answered. Closing this generator, or cancelling its consumer, cancels the reader,
        the dispatcher and every detection still running.
        """
        waiting: FrameBuffer[_Admitted] = FrameBuffer(self.queue_frames)
        window: asyncio.Queue[_InFlight | _End] = asyncio.Queue()  # bounded by ``slots``
        slots = asyncio.Semaphore(self.max_in_flight)
        env_id = self.environment.environment_id
        reader = asyncio.create_task(self._read(frames, waiting), name=f"{READER_TASK_PREFIX}-{env_id}")
        dispatcher = asyncio.create_task(
            self._dispatch(waiting, window, slots), name=f"{DISPATCHER_TASK_PREFIX}-{env_id}"
        )
        self.stats.open_streams += 1
        answered = dropped_total = 0
        current: _InFlight | None = None
        try:
            while not isinstance(item := await window.get(), _End):
                current = item
                dropped_total += item.dropped_before
                result = await self._track(item, dropped_total)
                current = None
                slots.release()  # the next waiting frame starts while this answer is written
                yield result
                answered += 1
                self.stats.frames_answered += 1
            if item.error is not None:
                raise item.error
        finally:
            for task in (reader, dispatcher):
                task.cancel()
            await asyncio.gather(reader, dispatcher, return_exceptions=True)
            left = [f for f in (current, *_drain(window)) if isinstance(f, _InFlight)]
            for flight in left:
                flight.detection.cancel()
            await asyncio.gather(*(f.detection for f in left), return_exceptions=True)
            self.stats.open_streams -= 1
            log.info(
                "live stream on %s closed: %d answered, %d dropped by back-pressure",
                env_id,
                answered,
                waiting.dropped_total,
            )

    async def _read(self, frames: AsyncIterator[LiveFrame], waiting: FrameBuffer[_Admitted]) -> None:
        """Admit frames as fast as they come; the buffer, not the client, decides what waits."""
        counts: collections.Counter[str] = collections.Counter()
        sequence = 0
        try:
            async for frame in frames:
                admitted = self._admit(frame, sequence, counts[frame.camera_id])
                counts[frame.camera_id] += 1
                sequence += 1
                self.stats.frames_received += 1
                if waiting.put(admitted) is not None:
                    self.stats.frames_dropped += 1
                self.stats.max_queue_depth = max(self.stats.max_queue_depth, len(waiting))
        except Exception as exc:  # handed to the consumer, after what came before it
            waiting.close(exc)
        except asyncio.CancelledError:
            # Only stream() cancels us on purpose (its consumer is gone by then); any other
            # cancellation must not pass for a half-close.
            waiting.close(Unavailable("reading the client's frames was interrupted"))
            raise
        finally:
            waiting.close()

    async def _dispatch(
        self, waiting: FrameBuffer[_Admitted], window: asyncio.Queue[_InFlight | _End], slots: asyncio.Semaphore
    ) -> None:
        """Start each waiting frame's detection as soon as the window has room, in order."""
        try:
            while True:
                await slots.acquire()
                item = await waiting.get()
                if item is None:
                    break
                admitted, dropped = item
                detection = asyncio.create_task(
                    self._detect(admitted), name=f"{DETECT_TASK_PREFIX}-{admitted.sequence}"
                )
                window.put_nowait(_InFlight(admitted, dropped, detection))
        except Exception as exc:  # the reader's error, queued behind the frames before it
            window.put_nowait(_End(exc))
            return
        window.put_nowait(_End())

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

    async def _detect(self, item: _Admitted) -> _Detected:
        """Decode (encoded frames, in a worker thread) and detect: no tracker state, so frames overlap."""
        rgb = item.rgb
        if rgb is None:
            try:
                rgb = await asyncio.to_thread(decode_encoded, item.frame.image, self.max_image_pixels)  # type: ignore[arg-type]
            except InvalidArgument as exc:
                raise InvalidArgument(f"frame {item.sequence} (camera {item.frame.camera_id!r}): {exc}") from exc
        # Down to the tracker's low score: weak detections extend tracks, never start them.
        return _Detected(rgb, await self.models.detect(rgb, self._tracker_config.low_score))

    async def _track(self, flight: _InFlight, dropped_total: int) -> LiveResult:
        """The tracker's part, one frame at a time in stream order."""
        item = flight.admitted
        frame, cam = item.frame, item.frame.camera_id
        detected = await flight.detection
        rgb, det = detected.rgb, detected.detections
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
            dropped_frames=flight.dropped_before,
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


def _drain(queue: asyncio.Queue[T]) -> list[T]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
