"""A live task: an environment's live cameras pulled into one tracking session until cancelled.

All cameras go through one :class:`~spoton_inference.pipeline.live.LiveSession`, so global
ids hold across cameras, and each processed frame is published like the batch runner's: a
``TrackingUpdate`` event and its track points. Progress stays 0 with the step "live"; the
task ends when it is cancelled. A camera that drops reconnects on its own (see
``live_pull.py``) while the session, and so every tracker, goes on.

While it runs, its pulls are registered in ``active`` (:class:`~.live_pull.LivePulls`, by
environment and camera id), where snapshots take their newest frame from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid

from spoton_inference.domain.environment import Environment
from spoton_inference.domain.events import CameraTracksOut, TrackingUpdate, TrackOut
from spoton_inference.pipeline.live import LiveResult, LiveSession
from spoton_inference.pipeline.live_pull import LivePull, LivePulls, PullOptions, pull_frames
from spoton_inference.pipeline.runner import RunnerPorts, track_point_row

LIVE_STEP = "live"


class LiveTaskRunner:
    def __init__(
        self,
        task_id: str,
        environment: Environment,
        ports: RunnerPorts,
        options: PullOptions,
        active: LivePulls | None = None,
    ) -> None:
        cameras = tuple(c for c in environment.cameras if c.source.is_live)
        if not cameras:
            raise ValueError(f"environment {environment.environment_id!r} has no live cameras")
        self.environment = environment
        self.ports = ports
        self.pulls = [LivePull(c.camera_id, c.source, options) for c in cameras]  # type: ignore[arg-type]
        self.session = LiveSession(
            dataclasses.replace(environment, cameras=cameras),
            ports.models,
            ports.tracking_setup,
        )
        self._task_uuid = uuid.UUID(task_id)
        self._active = active if active is not None else LivePulls()
        self.frames_done = 0

    async def run(self) -> None:
        """Track until cancelled; never returns on its own."""
        env_id = self.environment.environment_id
        keys = [(env_id, p.camera_id) for p in self.pulls]
        for key, pull in zip(keys, self.pulls, strict=True):
            self._active.register(key, pull)
        try:
            await self.ports.report_progress(0, LIVE_STEP)
            async for result in self.session.stream(pull_frames(self.pulls)):
                await self.ports.wait_if_paused()
                await self._publish(result)
                self.frames_done += 1
                if self.frames_done % 10 == 0:
                    await self.ports.report_progress(self.frames_done, LIVE_STEP)
        finally:
            for key in keys:
                self._active.remove(key)

    async def _publish(self, result: LiveResult) -> None:
        when = dt.datetime.fromtimestamp(result.timestamp, dt.UTC)
        tracks, rows = [], []
        for t in result.tracks:
            tracks.append(TrackOut(t.box, t.score, t.track_id, t.global_id, t.map_xy))
            rows.append(
                track_point_row(
                    when,
                    self._task_uuid,
                    result.environment_id,
                    result.camera_id,
                    result.global_frame_index,
                    t.track_id,
                    t.global_id,
                    t.box,
                    t.score,
                    t.map_xy,
                )
            )
        # A live camera has no source file: frames are numbered by their place in the pull.
        camera = CameraTracksOut(result.camera_id, LIVE_STEP, result.frame_id, tracks)
        self.ports.store_points(rows)
        await self.ports.emit(TrackingUpdate(result.global_frame_index, result.environment_id, time.time(), [camera]))
