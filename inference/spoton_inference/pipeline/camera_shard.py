"""The per-camera half of a recorded task: decode, detect, track and embed some of its cameras.

A task's cameras may run in several shards (:func:`split_cameras`), on this replica or on
others, while one :class:`~spoton_inference.tracking.multicam.Association`, in the task's own
runner, gives the global ids. A shard sends the association one
:class:`~spoton_inference.tracking.shard_messages.ShardFrame` per global
frame it has, in frame order, and a
:class:`~spoton_inference.tracking.shard_messages.BatchEnd` after each sub-video batch.

Its trackers must use the calibration the association fitted exactly from the frame the
one-process tracker would (:func:`~spoton_inference.tracking.multicam.refit_between`), so
before tracking a frame that may follow a refit, a shard waits (:class:`Pace`) until the
association has processed every frame before it. It also never runs more than
:data:`MAX_LEAD_FRAMES` ahead of it, so whatever carries its frames stays bounded. Before any
wait it sends a :class:`~spoton_inference.tracking.shard_messages.Mark` (it has nothing
before that frame), so the association never waits for a frame the shard does not have.

Example:
    >>> split_cameras(("c1", "c2", "c3", "c4", "c5"), 2)
    [('c1', 'c2'), ('c3', 'c4'), ('c5',)]
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np

from spoton_inference.domain.environment import Camera
from spoton_inference.pipeline.decode import read_frames_rgb
from spoton_inference.pipeline.queues import next_or_failure
from spoton_inference.pipeline.tracking_settings import TrackingSetup, track_start_scores
from spoton_inference.pipeline.triton_models import Detections, Models, crop_people
from spoton_inference.tracking.camera import FramePlan
from spoton_inference.tracking.multicam import CameraTrackers, refit_between, refit_every
from spoton_inference.tracking.shard_messages import BatchEnd, CameraView, Mark, Progress, ShardFrame, ShardMessage

C = TypeVar("C")
# Global frames decoded and detected ahead of the tracking stage.
READ_AHEAD_FRAMES = 3
# How far a shard may run ahead of the association, in frames (its messages in flight).
MAX_LEAD_FRAMES = 30


class ShardOutput(Protocol):
    """Where a shard's messages go: the association's inbox, in this process or through Redis."""

    async def send(self, message: ShardMessage) -> None: ...


class BatchFiles(Protocol):
    """A batch's recordings, local while it is decoded (pipeline/batch_downloads.py)."""

    async def ready(self, batch: int) -> float: ...
    def done(self, batch: int) -> None: ...


class Pace(Protocol):
    """How far the association has come."""

    async def wait_through(self, frame: int) -> Progress:
        """How far the association has come, once it has processed every frame up to ``frame``."""
        ...


def split_cameras(cameras: tuple[C, ...], per_shard: int) -> list[tuple[C, ...]]:
    """The cameras in shards of at most ``per_shard`` (0: one shard), in camera order."""
    if per_shard <= 0 or len(cameras) <= per_shard:
        return [cameras]
    return [cameras[k : k + per_shard] for k in range(0, len(cameras), per_shard)]


@dataclasses.dataclass(slots=True)
class _Decoded:
    global_index: int
    frames: dict[str, tuple[np.ndarray, str, int]]  # camera -> (rgb, source file, index in source)
    detections: dict[str, Detections]


class CameraShard:
    """Runs some cameras of a task through every batch, sending their frames to ``output``."""

    def __init__(
        self,
        cameras: tuple[Camera, ...],
        batch_lengths: Sequence[int],
        models: Models,
        setup: TrackingSetup,
        output: ShardOutput,
        pace: Pace,
        files: BatchFiles | None = None,
    ) -> None:
        """``batch_lengths``: the task's global frames per batch, over all its cameras;
        ``files``: the recordings of remote sub-videos, made local batch by batch."""
        self.cameras = cameras
        self._lengths = list(batch_lengths)
        self._models = models
        self._low_score = setup.tracker.low_score
        self._trackers = CameraTrackers([c.camera_id for c in cameras], setup.tracker, track_start_scores(cameras))
        self._every = refit_every(setup.tracker.fps)
        self._output = output
        self._pace = pace
        self._files = files
        self._progress = Progress(-1, -1, None)  # the association's, as last heard
        self.frames_sent = 0

    async def run(self) -> None:
        start = 0
        for batch, length in enumerate(self._lengths):
            await self._run_batch(batch, start)
            if self._files is not None:
                self._files.done(batch)
            await self._output.send(BatchEnd(batch))
            start += length

    async def _run_batch(self, batch: int, start: int) -> None:
        if self._files is not None:
            await self._files.ready(batch)
        queue: asyncio.Queue[_Decoded | None] = asyncio.Queue(maxsize=READ_AHEAD_FRAMES)
        producer = asyncio.create_task(self._decode_and_detect(batch, start, queue))
        try:
            while (item := await next_or_failure(queue, producer)) is not None:
                await self._keep_pace(item.global_index)
                await self._output.send(await self._track(item))
                self.frames_sent += 1
            await producer
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)

    async def _keep_pace(self, frame: int) -> None:
        """Wait, if need be, until the association is far enough along to track ``frame``."""
        known = self._progress
        need = frame - MAX_LEAD_FRAMES
        if refit_between(known.last_frame, frame - 1, self._every):
            need = frame - 1  # a refit may come before this frame: its calibration applies to it
        if need <= known.through:
            return
        await self._output.send(Mark(frame))
        self._progress = await self._pace.wait_through(need)
        calibration = self._progress.calibration
        if calibration is not None and calibration != known.calibration:
            self._trackers.recalibrate(calibration)

    async def _decode_and_detect(self, batch: int, start: int, queue: asyncio.Queue[_Decoded | None]) -> None:
        readers = {
            c.camera_id: (aiter(read_frames_rgb(c.sub_videos[batch].path)), c.sub_videos[batch].filename)
            for c in self.cameras
            if batch < len(c.sub_videos)
        }
        try:
            index = 0
            while True:
                frames: dict[str, tuple[np.ndarray, str, int]] = {}
                for cam_id, (reader, filename) in readers.items():
                    frame = await anext(reader, None)
                    if frame is not None:
                        frames[cam_id] = (frame, filename, index)
                if not frames:
                    break
                # Down to the tracker's low score: weak detections extend tracks, never start them.
                results = await asyncio.gather(*(self._models.detect(f[0], self._low_score) for f in frames.values()))
                await queue.put(_Decoded(start + index, frames, dict(zip(frames, results, strict=True))))
                index += 1
            await queue.put(None)
        finally:
            for reader, _ in readers.values():
                await reader.aclose()  # type: ignore[attr-defined]

    async def _track(self, item: _Decoded) -> ShardFrame:
        detections = {cam_id: (det.boxes, det.scores) for cam_id, det in item.detections.items()}
        plans = self._trackers.plan(detections)
        tracked = self._trackers.update(plans, await self._embed(item, plans))
        return ShardFrame(
            item.global_index,
            {
                cam_id: CameraView(source, index, *_boxes_and_scores(item.detections[cam_id]), tracked[cam_id])
                for cam_id, (_, source, index) in item.frames.items()
            },
        )

    async def _embed(self, item: _Decoded, plans: dict[str, FramePlan]) -> dict[str, dict[int, np.ndarray]]:
        """One Triton call for every detection the trackers asked for, across the shard's cameras."""
        keys: list[tuple[str, int]] = []
        crops: list[np.ndarray] = []
        for cam_id, plan in plans.items():
            if plan.needs_embedding:
                wanted = list(plan.needs_embedding)
                crops.append(crop_people(item.frames[cam_id][0], plan.boxes[wanted]))
                keys += [(cam_id, d) for d in wanted]
        out: dict[str, dict[int, np.ndarray]] = {}
        if keys:
            vectors = await self._models.embed(np.concatenate(crops))
            for (cam_id, d), vector in zip(keys, vectors, strict=True):
                out.setdefault(cam_id, {})[d] = vector
        return out


def _boxes_and_scores(detections: Detections) -> tuple[np.ndarray, np.ndarray]:
    return detections.boxes, detections.scores


class LocalPace:
    """The association's progress, for shards in its own process (and what remote ones read).

    >>> pace = LocalPace()
    >>> pace.advance(Progress(4, 3, None))
    >>> asyncio.run(pace.wait_through(3))
    Progress(through=4, last_frame=3, calibration=None)
    """

    def __init__(self) -> None:
        self.progress = Progress(-1, -1, None)
        self._changed = asyncio.Event()

    def advance(self, progress: Progress) -> None:
        if progress == self.progress:
            return
        self.progress = progress
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_through(self, frame: int) -> Progress:
        while self.progress.through < frame:
            await self._changed.wait()
        return self.progress
