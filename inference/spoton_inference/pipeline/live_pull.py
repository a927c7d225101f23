"""Pulling live cameras (RTSP/HTTP) into the same pipeline as streamed frames.

Each :class:`LivePull` decodes its camera in a thread of its own (never on the event loop)
and hands BGR frames to the loop as :class:`~spoton_inference.pipeline.live.LiveFrame`, so a
:class:`~spoton_inference.pipeline.live.LiveSession` tracks them exactly like frames a client
streams. :func:`pull_frames` merges several cameras into one iterator, so one session (one
tracker) sees them all and global ids work across cameras.

A dropped connection does not end the iterator: the pull reconnects with exponential
back-off and jitter, capped, and frames resume in the same session, so the camera's tracker
keeps its tracks. Frames carry their wall-clock arrival time, which keeps the tracker's clock
running across the gap. When the consumer is slower than the cameras, the oldest waiting
frames are dropped (the :class:`FrameBuffer` policy) and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView

import numpy as np

from spoton_inference.domain.backoff import doubling_s
from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.frame_rate import declared_fps
from spoton_inference.pipeline.av_source import ENDED, ERROR, SourceError, describe, open_source
from spoton_inference.pipeline.live import FrameBuffer, LiveFrame, RawPixels

log = logging.getLogger(__name__)
# Frames per camera that may wait for the consumer before the oldest is dropped.
QUEUE_FRAMES_PER_CAMERA = 2


@dataclasses.dataclass(frozen=True, slots=True)
class PullOptions:
    # Bound on opening the source and on every later read.
    timeout_s: float = 10.0
    # Reconnect delays: first, then doubling up to the cap; each with jitter (50-100%).
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    # Run before every connection, raising to refuse it (services/source_policy.py: a host name
    # that now resolves to a refused address is caught at connect time, not only when stored).
    check_source: Callable[[CameraSource], None] | None = None


@dataclasses.dataclass(slots=True)
class PullState:
    """What a pull is doing, for health and the API; ``last_error`` is masked."""

    connected: bool = False
    connects: int = 0
    reconnects: int = 0  # successful connections after the first
    failed_attempts: int = 0
    frames: int = 0
    frames_dropped: int = 0
    last_error: str = ""
    last_error_kind: str = ""
    last_frame_at: float | None = None
    codec: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0


def backoff_s(attempt: int, options: PullOptions, rand: Callable[[], float] = random.random) -> float:
    """Delay before reconnect ``attempt`` (0-based): doubling from the initial delay up to the
    cap, scaled by a random 50-100% so cameras dropped together do not all retry together."""
    base = doubling_s(attempt, options.reconnect_initial_s, options.reconnect_max_s)
    return base * (0.5 + 0.5 * rand())


class LivePull:
    """One camera's live source, decoded in its own thread while started."""

    def __init__(self, camera_id: str, source: CameraSource, options: PullOptions | None = None) -> None:
        if not source.is_live:
            raise ValueError(f"camera {camera_id!r}: a {source.kind!r} source is not pulled")
        self.camera_id = camera_id
        self.source = source
        self.options = options or PullOptions()
        self.state = PullState()
        # The newest decoded frame (BGR) and when it came, for snapshots.
        self.latest: np.ndarray | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, deliver: Callable[[LiveFrame], None]) -> None:
        """Decode in a thread; ``deliver`` is called on the event loop of the caller per frame."""
        if self._thread is not None:
            raise RuntimeError(f"pull of camera {self.camera_id!r} already started")
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._run, args=(loop, deliver), name=f"live-pull-{self.camera_id}", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """Stop and wait for the thread; at most one read timeout when the source hangs."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def _run(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[LiveFrame], None]) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                if self._pull(loop, deliver):
                    attempt = 0  # frames came: the next drop starts the back-off afresh
                error = SourceError(ENDED, f"the stream of {self.source.masked_url} ended")
            except Exception as exc:
                error = describe(exc, self.source.masked_url, self.options.timeout_s, 0.0)
            self.state.connected = False
            if self._stop.is_set():
                return
            self.state.failed_attempts += 1
            self.state.last_error, self.state.last_error_kind = error.reason, error.kind
            delay = backoff_s(attempt, self.options)
            attempt += 1
            log.warning("camera %s: %s; reconnecting in %.1f s", self.camera_id, error.reason, delay)
            if self._stop.wait(delay):
                return

    def _pull(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[LiveFrame], None]) -> bool:
        """One connection: decode until it drops or we are stopped; True when frames came."""
        if self.options.check_source is not None:
            try:
                self.options.check_source(self.source)
            except InvalidArgument as exc:
                raise SourceError(ERROR, str(exc)) from None
        container, stream = open_source(self.source, self.options.timeout_s)
        got_frames = False
        with contextlib.closing(container):
            ctx = stream.codec_context
            s = self.state
            s.codec, s.width, s.height = ctx.name, ctx.width, ctx.height
            s.fps = declared_fps(stream)
            s.connected = True
            s.connects += 1
            if s.connects > 1:
                s.reconnects += 1
                log.info("camera %s: reconnected to %s", self.camera_id, self.source.masked_url)
            for frame in container.decode(stream):
                if self._stop.is_set():
                    break
                bgr = frame.to_ndarray(format="bgr24")
                now = time.time()
                self.latest, s.last_frame_at = bgr, now
                live = LiveFrame(self.camera_id, RawPixels(bgr.tobytes(), bgr.shape[1], bgr.shape[0]), now, s.frames)
                s.frames += 1
                got_frames = True
                loop.call_soon_threadsafe(deliver, live)
        return got_frames


CameraKey = tuple[str, str]  # (environment id, camera id)


class LivePulls(Mapping[CameraKey, LivePull]):
    """The pulls of running live tasks, by (environment id, camera id): live task runners
    register theirs while they run; snapshots and the camera metrics read them.

    One object owned by the composition root and given to each, instead of a shared dict
    anyone may change: only :meth:`register` and :meth:`remove` change it.
    """

    def __init__(self) -> None:
        self._pulls: dict[CameraKey, LivePull] = {}

    def register(self, key: CameraKey, pull: LivePull) -> None:
        self._pulls[key] = pull

    def remove(self, key: CameraKey) -> None:
        """Forget ``key``'s pull; nothing when it is not registered."""
        self._pulls.pop(key, None)

    def __getitem__(self, key: CameraKey) -> LivePull:
        return self._pulls[key]

    def __iter__(self) -> Iterator[CameraKey]:
        return iter(self._pulls)

    def __len__(self) -> int:
        return len(self._pulls)

    # The dict's own views: the metrics scrape (another thread) copies them in one step.
    def keys(self) -> KeysView[CameraKey]:
        return self._pulls.keys()

    def items(self) -> ItemsView[CameraKey, LivePull]:
        return self._pulls.items()

    def values(self) -> ValuesView[LivePull]:
        return self._pulls.values()


async def pull_frames(pulls: Sequence[LivePull]) -> AsyncIterator[LiveFrame]:
    """The frames of all ``pulls`` as they arrive, dropping the oldest when the consumer lags.

    Never ends by itself (sources reconnect); closing the iterator stops the pulls.
    """
    buffer: FrameBuffer[LiveFrame] = FrameBuffer(QUEUE_FRAMES_PER_CAMERA * max(len(pulls), 1))
    by_camera = {p.camera_id: p for p in pulls}

    def deliver(frame: LiveFrame) -> None:
        dropped = None if buffer.closed else buffer.put(frame)
        if dropped is not None:
            by_camera[dropped.camera_id].state.frames_dropped += 1

    for pull in pulls:
        pull.start(deliver)
    try:
        while (item := await buffer.get()) is not None:
            yield item[0]
    finally:
        buffer.close()
        await asyncio.gather(*(p.stop() for p in pulls))
