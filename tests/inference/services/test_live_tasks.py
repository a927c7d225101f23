"""StartTask over an environment's live (RTSP) cameras: tracked until cancelled, on real parts."""

from __future__ import annotations

import asyncio

import pytest

from spoton_inference.domain.camera_source import SourceInput, SourceKind
from spoton_inference.domain.errors import FailedPrecondition
from spoton_inference.domain.events import StatusUpdate, TaskState, TrackingUpdate
from spoton_inference.services.catalog import CameraPatch, CameraSpec, EnvironmentSpec
from spoton_inference.services.tasks import TaskAction

pytestmark = pytest.mark.timeout(180)


async def test_a_live_task_tracks_its_camera_until_cancelled(live_service, rtsp_camera, job_video):
    app = live_service.app
    cam = await rtsp_camera(video=job_video)
    await app.catalog.create_environment(EnvironmentSpec("live-task"))
    source = SourceInput(SourceKind.RTSP, cam.url)
    await app.catalog.create_camera("live-task", CameraSpec("c1", fps=10, width=640, height=480, source=source))

    record = await app.tasks.start("live-task", [])
    assert record.total_frames == 0  # nothing to count: it runs until cancelled
    updates: list[TrackingUpdate] = []
    steps: list[tuple[TaskState, str, float]] = []
    people_tracked = asyncio.Event()

    async def watch() -> None:
        async for event in app.tasks.watch(record.task_id, 0):
            if isinstance(event.payload, TrackingUpdate):
                updates.append(event.payload)
                if sum(len(c.tracks) for u in updates for c in u.cameras) >= 3:
                    people_tracked.set()
            elif isinstance(event.payload, StatusUpdate):
                steps.append((event.payload.state, event.payload.step, event.payload.progress))

    watcher = asyncio.create_task(watch())
    async with asyncio.timeout(60):
        await people_tracked.wait()
    assert ("live-task", "c1") in app.live_pulls  # a snapshot reads this pull's newest frame
    assert (TaskState.PROCESSING, "live", 0.0) in steps
    assert {c.camera_id for u in updates for c in u.cameras} == {"c1"}

    await app.tasks.control(record.task_id, TaskAction.CANCEL)
    async with asyncio.timeout(30):
        await watcher
    assert steps[-1][0] is TaskState.CANCELLED
    assert (await app.tasks.get(record.task_id)).state is TaskState.CANCELLED
    assert ("live-task", "c1") not in app.live_pulls


async def test_disabled_cameras_are_not_run(live_service, rtsp_camera):
    app = live_service.app
    cam = await rtsp_camera()
    await app.catalog.create_environment(EnvironmentSpec("live-off"))
    source = SourceInput(SourceKind.RTSP, cam.url)
    await app.catalog.create_camera("live-off", CameraSpec("c1", fps=10, width=320, height=240, source=source))
    await app.catalog.update_camera("live-off", "c1", CameraPatch(enabled=False))

    with pytest.raises(FailedPrecondition, match="no enabled cameras"):
        await app.tasks.start("live-off", [])
    with pytest.raises(FailedPrecondition, match=r"\['c1'\] are disabled"):
        await app.tasks.start("live-off", ["c1"])
