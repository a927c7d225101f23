"""One processing task over an environment's sub-videos, batch by batch.

Per batch: publish the sub-videos as media, announce them, then for each global frame index
across all cameras: decode -> detect (Triton) -> track per camera -> embed the crops that
need it (one Triton call per shard) -> map foot points -> assign global ids -> emit a
``tracking_update`` (the live view).

The per-camera half runs in camera shards (:mod:`.camera_shard`): one with every camera, or,
past ``cameras_per_shard``, several, of which those another replica takes
(``RunnerPorts.shards``) run there. Their frames are merged back in frame order
(:mod:`.frame_merge`) and one :class:`~spoton_inference.tracking.multicam.Association` gives
the global ids, so where the cameras ran does not change them.

Recorded video is then refined (:mod:`.refinement`): at the end of each batch, or every
``refine_window_frames`` frames of a long one, the window's online tracks are re-decided with
the whole window in view, off the event loop. The refined frames, not the online ones, go to
the exports, the track points, the history and the zone events, and are announced in
``tracks_refined`` events before ``batch_processing_complete``. With refinement off, each
online frame is stored as it comes.

Decoding and detection run ahead of tracking in each shard, and shards run ahead of the
association, all bounded, so Triton is kept busy while the current frame is associated.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from spoton_inference.domain.environment import Camera, Environment
from spoton_inference.domain.events import (
    BatchProcessingComplete,
    CameraTracksOut,
    MediaAvailable,
    MediaUrl,
    TaskEventPayload,
    TrackingUpdate,
    TrackOut,
    TracksRefined,
    ZoneEvent,
)
from spoton_inference.domain.zones import Zone
from spoton_inference.pipeline.batch_downloads import BatchDownloads, Recordings, remote_batches
from spoton_inference.pipeline.camera_shard import CameraShard, LocalPace, split_cameras
from spoton_inference.pipeline.exports import ExportWriter, MotWriter
from spoton_inference.pipeline.frame_merge import FrameMerge, ShardInbox
from spoton_inference.pipeline.history import HistorySink, TaskHistory
from spoton_inference.pipeline.queues import next_or_failure
from spoton_inference.pipeline.refinement import FRAMES_PER_REFINED_EVENT, RefinedWindow, RefinementWindows
from spoton_inference.pipeline.tracking_settings import TrackingSetup
from spoton_inference.pipeline.triton_models import Models
from spoton_inference.pipeline.zone_tracker import ENTER, ZoneTransition
from spoton_inference.tracking.appearance import ReidCalibration
from spoton_inference.tracking.identities import IdentityState
from spoton_inference.tracking.multicam import Association
from spoton_inference.tracking.shard_messages import Progress, ShardFrame, ShardMessage

log = logging.getLogger(__name__)
# The export that says how the task tracked: the Re-ID calibration it fitted, and each
# refinement window with the time it took.
TRACKING_EXPORT = "tracking.json"
# While a batch's recordings download, its progress is reported this often.
DOWNLOAD_REPORT_EVERY_S = 0.5


@dataclasses.dataclass(frozen=True, slots=True)
class TaskPlan:
    task_id: str
    environment: Environment
    cameras: tuple[Camera, ...]
    created_at: dt.datetime

    @property
    def total_frames(self) -> int:
        """Global frames to process; 0 for a live task, which runs until cancelled."""
        return sum(batch_lengths(self.cameras))

    @property
    def is_live(self) -> bool:
        """Over cameras the service pulls (RTSP/HTTP) rather than recorded sub-videos."""
        return bool(self.cameras) and all(c.is_pulled for c in self.cameras)


def batch_lengths(cameras: tuple[Camera, ...]) -> list[int]:
    """Global frames in each batch: the longest of that batch's sub-videos."""
    n = max((len(c.sub_videos) for c in cameras), default=0)
    return [max((c.sub_videos[k].num_frames for c in cameras if k < len(c.sub_videos)), default=0) for k in range(n)]


def track_point_row(
    when: dt.datetime,
    task_id: uuid.UUID,
    environment_id: str,
    camera_id: str,
    global_frame_index: int,
    track_id: int,
    global_id: int,
    box: tuple[float, ...],
    score: float,
    map_xy: tuple[float, float] | None,
) -> tuple:
    """One track point as ``RunnerPorts.store_points`` takes it (storage/task_store.py TRACK_POINT_COLUMNS)."""
    x, y = map_xy if map_xy else (None, None)
    return (when, task_id, environment_id, camera_id, global_frame_index, track_id, global_id, *box, score, x, y)


class MediaPublisher(Protocol):
    """Where a batch's sub-videos are made servable to browsers (files/media.MediaRoot)."""

    async def publish_video(self, src: Path, rel: Path) -> str:
        """Publish a browser-playable copy of ``src`` at ``rel``; returns its URL."""
        ...

    def prefetch_video(self, src: Path) -> None:
        """Start making that copy in the background (a batch's recordings just became local)."""
        ...


class ShardLinks(Protocol):
    """A task's camera shards on other replicas (storage/camera_shards.py)."""

    async def offer(self, shard: int, cameras: tuple[Camera, ...]) -> ShardInbox | None:
        """Have another replica run these cameras; their inbox, or None when none took them."""
        ...

    async def advance(self, progress: Progress) -> None:
        """Tell the shards how far the association has come."""
        ...

    async def close(self) -> None:
        """Stop the shards (the task has ended, one way or another)."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class RunnerPorts:
    """What the runner needs from the outside world, so it knows nothing of gRPC or storage."""

    models: Models
    emit: Callable[[TaskEventPayload], Awaitable[None]]
    store_points: Callable[[list[tuple]], None]
    report_progress: Callable[[int, str], Awaitable[None]]
    media: MediaPublisher
    exports_dir: Path
    # How to track at a given fps (pipeline.tracking_settings.tracking_setup over the settings).
    tracking_setup: Callable[[float], TrackingSetup]
    # Returns at once unless the task is paused; then when it is resumed.
    wait_if_paused: Callable[[], Awaitable[None]]
    # Called about once a second of video with the identities seen since the last call, to
    # mirror the gallery; must not block.
    identities_seen: Callable[[list[IdentityState]], None] | None = None
    # Identities and events for the history (pipeline/history.py), and the zones to watch.
    history: HistorySink | None = None
    zones: tuple[Zone, ...] = ()
    # Past this many cameras (0: never), the cameras run in shards of this many, those another
    # replica takes through ``shards`` there, the others here.
    cameras_per_shard: int = 0
    shards: ShardLinks | None = None
    # Where sub-videos in object storage are made local (None: the task has none).
    recordings: Recordings | None = None


class _LocalShard:
    """A shard in this process: its messages through a queue; its failure is the task's."""

    def __init__(self, make: Callable[[_LocalShard], CameraShard]) -> None:
        self._queue: asyncio.Queue[ShardMessage | None] = asyncio.Queue()  # bounded by the shard's pace
        self.task = asyncio.create_task(make(self).run())

    async def send(self, message: ShardMessage) -> None:
        self._queue.put_nowait(message)

    async def receive(self) -> ShardMessage:
        message = await next_or_failure(self._queue, self.task)
        if message is None:
            raise RuntimeError("a camera shard ended before its last batch")
        return message


class _Shared:
    """The task's downloads as a shard here sees them: the task, not the shard, says when a
    batch is done, once every shard is past it."""

    def __init__(self, downloads: BatchDownloads) -> None:
        self._downloads = downloads

    async def ready(self, batch: int) -> float:
        return await self._downloads.ready(batch)

    def done(self, batch: int) -> None:
        pass


async def _unless_one_fails(main: Awaitable[None], helpers: list[asyncio.Task[None]]) -> None:
    """Await ``main``; a helper that fails first (a shard here whose frames ``main`` may not be
    waiting for) stops it with the helper's error."""
    running = asyncio.ensure_future(main)
    try:
        while not running.done():
            waiting = [running, *(h for h in helpers if not h.done())]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for helper in helpers:
                if helper.done() and not helper.cancelled() and (error := helper.exception()) is not None:
                    raise error
        running.result()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


class TaskRunner:
    def __init__(self, plan: TaskPlan, ports: RunnerPorts) -> None:
        self.plan = plan
        self.ports = ports
        fps = plan.cameras[0].fps
        self._setup = setup = ports.tracking_setup(fps)
        self._association = Association(
            {c.camera_id: c.homography for c in plan.cameras}, setup.tracker, setup.association, setup.self_calibrate
        )
        self._calibration: ReidCalibration | None = None  # the association's last refit
        self._pace = LocalPace()
        self._downloaded: tuple[int, int] = (0, 0)  # the batch downloading now: bytes done, total
        # Per batch, seconds the task waited for its recordings from object storage (none: local).
        self.download_wait_s: list[float] = []
        batches = remote_batches(plan.cameras)
        self._remote = any(batches)
        self._downloads = BatchDownloads(
            batches, ports.recordings, plan.task_id, self._on_download, on_local=self._on_local
        )
        camera_ids = [c.camera_id for c in plan.cameras]
        refiner = setup.refiner(plan.cameras)
        env_id = plan.environment.environment_id
        self._windows = (
            RefinementWindows(refiner, camera_ids, env_id, setup.refine_window_frames) if refiner is not None else None
        )
        self._task_uuid = uuid.UUID(plan.task_id)
        self._history = (
            TaskHistory(self._task_uuid, env_id, plan.created_at, fps, ports.zones, ports.history)
            if ports.history is not None
            else None
        )
        self._exports = ExportWriter(
            ports.exports_dir,
            camera_ids,
            fps,
            on_event=self._history.camera_event if self._history is not None else None,
        )
        # With refinement, the online result is exported too, for comparison.
        self._online = MotWriter(ports.exports_dir, camera_ids, "online.") if self._windows is not None else None
        self.frames_done = 0
        self.frames_stored = 0
        # Per refinement window: first and last global frame, and the wall time it took.
        self.refined_windows: list[tuple[int, int, float]] = []
        self._synced_through = -1  # last global frame whose identities went to identities_seen
        self._sync_every = max(1, round(fps))
        self._batch = 0

    async def run(self) -> list[Path]:
        """Process every batch; returns the export files. Cancellation stops it between frames."""
        finished = False
        local: list[_LocalShard] = []
        try:
            inboxes = await self._place_shards(local)
            await _unless_one_fails(self._run_batches(inboxes), [s.task for s in local])
            finished = True
        finally:
            await self._stop_shards(local)
            self._downloads.close()
            if not finished:
                # Cancelled or failed: what was tracked is still refined and stored, not announced.
                try:
                    await self._refine_window(announce=False)
                except Exception:  # the task's own cancellation or failure is what it ends with
                    log.exception("task %s: refining its last frames failed; they are not stored", self.plan.task_id)
            files = self._close_exports()
            if self.ports.identities_seen is not None and self._windows is None:
                self._sync_identities()
            if self._history is not None and not finished:
                self._history.close()
        return files

    async def _run_batches(self, inboxes: list[ShardInbox]) -> None:
        merge = FrameMerge(inboxes, [c.camera_id for c in self.plan.cameras], self._advance)
        start = 0
        for k, length in enumerate(batch_lengths(self.plan.cameras)):
            self._batch = k
            await self.ports.report_progress(self.frames_done, f"preparing batch {k + 1}")
            await self._download(k)
            await self.ports.emit(await self._publish_media(k, start))
            merge.begin_batch(start)
            await self._advance(start - 1)
            async for frame in merge:
                await self._track_and_publish(frame)
                if self.frames_done % 10 == 0:
                    await self.ports.report_progress(self.frames_done, f"processing batch {k + 1}")
            await self._refine_window(announce=True)
            self._downloads.done(k)  # every shard here is past it: its recordings may be evicted
            await self.ports.emit(BatchProcessingComplete(sub_video_batch_index=k))
            start += length
        if self._history is not None:
            await self._emit_zone_events(self._history.close())

    async def _download(self, batch: int) -> None:
        """Wait until the batch's recordings are local (no media URL may 404), reporting the bytes."""
        waiting = asyncio.ensure_future(self._downloads.ready(batch))
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=DOWNLOAD_REPORT_EVERY_S)
                if done:
                    waited = waiting.result()
                    if self._remote:
                        self.download_wait_s.append(round(waited, 4))
                    return
                got, total = self._downloaded
                step = f"preparing batch {batch + 1}: downloading {got / 1e6:.1f} of {total / 1e6:.1f} MB"
                await self.ports.report_progress(self.frames_done, step)
        finally:
            waiting.cancel()

    def _on_download(self, batch: int, done: int, total: int) -> None:
        self._downloaded = (done, total)

    def _on_local(self, batch: int, paths: list[Path]) -> None:
        # Their browser copies are made now, while the batch before is processed, not when the
        # batch is announced (recordings on disk had theirs made at registration).
        for path in paths:
            self.ports.media.prefetch_video(path)

    def _close_exports(self) -> list[Path]:
        if self._online is not None:
            self._online.close()
        self._exports.write_json(
            TRACKING_EXPORT,
            {
                "reid_calibration": self._association.fit.to_json(),
                # Seconds each batch waited for its recordings from object storage (none: local).
                "download_wait_s": self.download_wait_s,
                "refinement": [
                    {"first_frame": first, "last_frame": last, "seconds": round(seconds, 4)}
                    for first, last, seconds in self.refined_windows
                ],
            },
        )
        return self._exports.close()

    async def _publish_media(self, batch: int, start: int) -> MediaAvailable:
        """Make each sub-video servable first (its browser-playable copy: MediaRoot.publish_video),
        so no announced URL can 404."""
        urls = []
        env_id = self.plan.environment.environment_id
        for cam in self.plan.cameras:
            if batch >= len(cam.sub_videos):
                continue
            sub = cam.sub_videos[batch]
            rel = Path(
                "tasks", self.plan.task_id, "environments", env_id, "cameras", cam.camera_id, "sub_videos", sub.filename
            )
            urls.append(
                MediaUrl(
                    camera_id=cam.camera_id,
                    sub_video_filename=sub.filename,
                    url=await self.ports.media.publish_video(sub.path, rel),
                    start_global_frame_index=start,
                    num_frames_in_sub_video=sub.num_frames,
                    fps=cam.fps,
                )
            )
        return MediaAvailable(sub_video_batch_index=batch, media_urls=urls)

    async def _place_shards(self, local: list[_LocalShard]) -> list[ShardInbox]:
        """Start the camera shards: those another replica takes run there, the rest here."""
        lengths = batch_lengths(self.plan.cameras)
        inboxes: list[ShardInbox] = []
        for k, cameras in enumerate(split_cameras(self.plan.cameras, self.ports.cameras_per_shard)):
            remote = None
            if k > 0 and self.ports.shards is not None:  # the first shard always runs here
                remote = await self.ports.shards.offer(k, cameras)
            if remote is None:

                def make(output: _LocalShard, cameras: tuple[Camera, ...] = cameras) -> CameraShard:
                    return CameraShard(
                        cameras, lengths, self.ports.models, self._setup, output, self._pace, _Shared(self._downloads)
                    )

                local.append(_LocalShard(make))
                remote = local[-1]
            inboxes.append(remote)
        return inboxes

    async def _stop_shards(self, local: list[_LocalShard]) -> None:
        for shard in local:
            shard.task.cancel()
        await asyncio.gather(*(s.task for s in local), return_exceptions=True)
        if self.ports.shards is not None:
            await self.ports.shards.close()

    async def _advance(self, through: int) -> None:
        """Let the shards know the association has processed every frame up to ``through``."""
        progress = Progress(through, self._association.last_frame, self._calibration)
        self._pace.advance(progress)
        if self.ports.shards is not None:
            await self.ports.shards.advance(progress)

    async def _track_and_publish(self, frame: ShardFrame) -> None:
        await self.ports.wait_if_paused()
        index = frame.global_index
        detections = {cam_id: (view.boxes, view.scores) for cam_id, view in frame.cameras.items()}
        for cam_id, (boxes, scores) in detections.items():
            self._exports.add_detections(cam_id, index, boxes, scores)
        tracked, refitted = self._association.update(index, {c: v.tracked for c, v in frame.cameras.items()})
        if refitted is not None:
            self._calibration = refitted
        update = TrackingUpdate(
            index,
            self.plan.environment.environment_id,
            time.time(),
            [
                CameraTracksOut(
                    cam_id,
                    view.source,
                    view.index_in_source,
                    [
                        TrackOut(
                            tuple(round(float(v), 2) for v in t.box),
                            round(t.score, 4),
                            t.track_id,
                            t.global_id,
                            t.map_xy,
                        )  # type: ignore[arg-type]
                        for t in tracked[cam_id]
                    ],
                )
                for cam_id, view in frame.cameras.items()
            ],
        )
        await self.ports.emit(update)
        self.frames_done += 1
        if self._windows is None:
            await self._store(update)
            if self.frames_done % self._sync_every == 0 and self.ports.identities_seen is not None:
                self._sync_identities()
            return
        self._online.add(update)  # type: ignore[union-attr]
        sources = {cam_id: (view.source, view.index_in_source) for cam_id, view in frame.cameras.items()}
        self._windows.add(index, sources, tracked, detections)
        if self._windows.full:
            await self._refine_window(announce=True)

    async def _refine_window(self, announce: bool) -> None:
        """Refine the pending frames off the event loop, store them and (if told) announce them."""
        if self._windows is None or not self._windows.pending_frames:
            return
        window = await asyncio.to_thread(self._windows.refine, self._association.fit)
        self.refined_windows.append((window.first_frame, window.last_frame, window.seconds))
        for update in window.updates:
            await self._store(update, announce=announce)
        if self.ports.identities_seen is not None and window.identities:
            self.ports.identities_seen(window.identities)
        if announce:
            await self._announce(window)

    async def _announce(self, window: RefinedWindow) -> None:
        for k in range(0, len(window.updates), FRAMES_PER_REFINED_EVENT):
            chunk = window.updates[k : k + FRAMES_PER_REFINED_EVENT]
            await self.ports.emit(
                TracksRefined(
                    sub_video_batch_index=self._batch,
                    start_global_frame_index=chunk[0].global_frame_index,
                    end_global_frame_index=chunk[-1].global_frame_index + 1,
                    updates=chunk,
                )
            )

    async def _store(self, update: TrackingUpdate, announce: bool = True) -> None:
        """Exports, track points, history and zone events of one frame as it is kept."""
        when = self.plan.created_at + dt.timedelta(seconds=update.global_frame_index / self.plan.cameras[0].fps)
        env_id = update.environment_id
        rows: list[tuple] = []
        seen: list[tuple[str, int, tuple[float, float] | None]] = []
        for cam in update.cameras:
            for t in cam.tracks:
                seen.append((cam.camera_id, t.global_id, t.map_coords))
                rows.append(
                    track_point_row(
                        when,
                        self._task_uuid,
                        env_id,
                        cam.camera_id,
                        update.global_frame_index,
                        t.track_id,
                        t.global_id,
                        t.box,
                        t.score,
                        t.map_coords,
                    )
                )
        self._exports.add(update)
        self.ports.store_points(rows)
        self.frames_stored += 1
        if self._history is not None:
            await self._emit_zone_events(self._history.frame(update.global_frame_index, seen), announce)
            if self.frames_stored % self._sync_every == 0:
                self._history.sync()

    async def _emit_zone_events(self, transitions: list[ZoneTransition], announce: bool = True) -> None:
        for t in transitions:
            self._exports.add_zone_event(
                t.kind, t.global_frame_index, t.camera_id, t.global_id, t.zone_id, t.zone_name, t.map_xy
            )
            if not announce:
                continue
            kind = "enter" if t.kind == ENTER else "exit"  # the gRPC event names it without the "zone_" prefix
            await self.ports.emit(
                ZoneEvent(kind, t.zone_id, t.zone_name, t.global_id, t.global_frame_index, t.camera_id, t.map_xy)
            )

    def _sync_identities(self) -> None:
        seen = [i for i in self._association.identities.gallery if i.last_frame > self._synced_through]
        if seen:
            self._synced_through = seen[0].last_frame
            self.ports.identities_seen(seen)  # type: ignore[misc]

    @property
    def num_identities(self) -> int:
        """Global ids given out: the refined ones when recorded video is refined."""
        if self._windows is not None:
            return self._windows.num_identities
        return self._association.identities.num_identities
