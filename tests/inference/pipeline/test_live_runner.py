"""A live task over two real RTSP cameras and real Triton: one session, reconnects, until cancelled."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.environment import Camera, Environment, FloorMap
from spoton_inference.domain.events import TrackingUpdate
from spoton_inference.pipeline.live_pull import LivePulls, PullOptions
from spoton_inference.pipeline.live_runner import LIVE_STEP, LiveTaskRunner
from spoton_inference.pipeline.runner import RunnerPorts
from spoton_inference.pipeline.tracking_settings import tracking_setup

pytestmark = pytest.mark.timeout(180)


async def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def people_video(make_data_dir) -> Path:
    """A generated 10 s, 10 fps, 320x240 H.264 video of four people walking in a hall: long
    enough to outlast the test's stop and restart of a camera, with people to track all along."""
    from spoton_inference.scenes.config import demo_config
    from spoton_inference.scenes.generate import generate

    demo = demo_config(seed=7)
    camera = dataclasses.replace(demo.cameras[1], width=320, height=240)
    config = dataclasses.replace(demo, cameras=(camera,), n_people=4, frames_per_batch=100, n_batches=1)
    return generate(config, make_data_dir("live-runner") / "site") / "cameras" / camera.id / "sub_video_01.mp4"


async def test_live_task_tracks_all_cameras_in_one_session_across_a_reconnect(
    live_service, rtsp_camera, people_video, tmp_path
):
    a, b = await rtsp_camera(video=people_video), await rtsp_camera(video=people_video)
    cameras = tuple(
        Camera(cid, cid, 10.0, 320, 240, None, source=CameraSource.from_url(cam.url))
        for cid, cam in (("a", a), ("b", b))
    )
    env = Environment("live-env", "live", FloorMap(), (*cameras, Camera("files", "files", 10.0, 0, 0, None)))
    updates: list[TrackingUpdate] = []
    steps: list[str] = []
    points: list[tuple] = []

    async def emit(payload) -> None:
        updates.append(payload)

    async def progress(frames: int, step: str) -> None:
        steps.append(step)

    async def go_on() -> None:
        return None

    ports = RunnerPorts(
        models=live_service.app.models,
        emit=emit,
        store_points=points.extend,
        report_progress=progress,
        media=live_service.settings.media,
        exports_dir=tmp_path,
        tracking_setup=functools.partial(tracking_setup, live_service.settings),
        wait_if_paused=go_on,
    )
    active = LivePulls()
    runner = LiveTaskRunner(
        "00000000-0000-0000-0000-000000000001",
        env,
        ports,
        PullOptions(timeout_s=5, reconnect_initial_s=0.2, reconnect_max_s=1),
        active,
    )
    session = runner.session
    task = asyncio.create_task(runner.run())

    def seen(camera: str) -> list[int]:
        return [u.global_frame_index for u in updates if u.cameras[0].camera_id == camera]

    def stored(camera: str, after: int = -1) -> bool:
        """Whether track points of ``camera`` past global frame ``after`` went to store_points."""
        # A row: (time, task, environment, camera, global frame index, ...).
        return any(row[3] == camera and row[4] > after for row in points)

    try:
        await until(lambda: len(seen("a")) >= 3 and len(seen("b")) >= 3)
        await until(lambda: stored("a") and stored("b"))
        assert set(active) == {("live-env", "a"), ("live-env", "b")}  # the file camera is not pulled
        await a.stop()
        pull_a = active[("live-env", "a")]
        await until(lambda: not pull_a.state.connected)
        before = len(seen("a"))
        last_index = max(u.global_frame_index for u in updates)
        await until(lambda: len(seen("b")) >= before + 5)  # b goes on while a is down
        await a.start()
        # Under load, frames of a read before the stop may still be tracked after it: wait for
        # the reconnect itself, then for frames of a past everything seen until then.
        await until(lambda: pull_a.state.reconnects >= 1)
        reconnected_index = max(u.global_frame_index for u in updates)
        await until(lambda: len(seen("a")) >= before + 3)
        await until(lambda: stored("a", after=reconnected_index))  # a is tracked again after the reconnect
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert pull_a.state.reconnects >= 1
    assert runner.session is session  # one tracker state all along
    assert seen("a")[-1] > last_index  # the session's clock went on across the gap
    assert steps[0] == LIVE_STEP and set(steps) == {LIVE_STEP}
    assert active == {}  # pulls are unlisted (and stopped) once the task ends
    assert not any(p.running for p in runner.pulls)
    assert session.stats.open_streams == 0
