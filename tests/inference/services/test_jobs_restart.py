"""The job queue survives a restart of the inference service: stop one InferenceApp while a job
runs and another waits, create a new one on the same PostgreSQL, and both jobs complete (the
interrupted one still with its zones); a job interrupted on every allowed start fails, saying
why. Real Triton, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spoton_inference.app import InferenceApp
from spoton_inference.domain.events import TaskState
from spoton_inference.domain.geometry import HomographySpec
from spoton_inference.domain.job_types import JobState, JobZone, ResultKind
from spoton_inference.services.jobs import ORPHAN_FILES_GRACE_S, UploadRequest

pytestmark = pytest.mark.timeout(300)

# The lower part of the 640x480 frame onto a 10 m x 10 m floor, and its left half as a zone.
FLOOR = HomographySpec(((0, 480), (640, 480), (640, 200), (0, 200)), ((0, 0), (10, 0), (10, 10), (0, 10)))
LEFT = JobZone("left", "Left half", ((0, 0), (5, 0), (5, 10), (0, 10)))


async def _chunks(path: Path, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    data = path.read_bytes()
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _wait(app: InferenceApp, job_id: str, done, timeout_s: float = 120):
    async with asyncio.timeout(timeout_s):
        while True:
            job = await app.jobs.get(job_id)
            if done(job):
                return job
            await asyncio.sleep(0.02)


async def test_queued_jobs_run_and_running_jobs_run_again_after_a_restart(service_settings, job_video):
    settings = await service_settings("spoton_jobs_restart", job_concurrency=1, job_max_attempts=3)
    first = await InferenceApp.create(settings)
    try:
        await first.warm_up()
        request = UploadRequest("a.mp4", name="running at the restart", homography=FLOOR, zones=(LEFT,))
        running = await first.jobs.upload(request, _chunks(job_video))
        waiting = await first.jobs.upload(UploadRequest("b.mp4", name="queued at the restart"), _chunks(job_video))
        running = await _wait(first, running.job_id, lambda j: j.state is JobState.RUNNING and j.task_id)
    finally:
        await first.close()

    second = await InferenceApp.create(settings)
    try:
        # Recovered before the queue starts: nothing forgotten, the interrupted job queued again.
        again = await second.jobs.get(running.job_id)
        assert again.state is JobState.QUEUED and "restart" in again.step and again.attempts == 1
        assert (await second.jobs.get(waiting.job_id)).state is JobState.QUEUED
        old_task = await second.tasks.get(running.task_id)
        assert old_task.state.is_final and old_task.state is not TaskState.COMPLETED

        await second.warm_up()  # starts the queue
        for job_id, attempts in ((running.job_id, 2), (waiting.job_id, 1)):
            done = await _wait(second, job_id, lambda j: j.state.is_final)
            assert done.state is JobState.COMPLETED, done.error
            assert done.attempts == attempts and done.task_id != running.task_id
            assert {r.kind.value for r in done.results} == {"video", "events", "tracks"}
            assert all((settings.media_root / r.media_path).is_file() for r in done.results)
        # The interrupted start's partial exports are gone.
        assert not (settings.media_root / "tasks" / running.task_id).exists()
        # Its zones were kept with the job, and the second start watched them.
        resumed = await second.jobs.get(running.job_id)
        assert resumed.options.zones == (LEFT,)
        assert [z.zone_id for z in await second.analytics.list_zones(resumed.environment_id)] == ["left"]
        events = json.loads((await second.jobs.result_path(resumed.job_id, ResultKind.EVENTS)).read_text())
        assert {"zone_enter", "zone_exit"} <= {e["type"] for e in events["events"]}
    finally:
        await second.close()


async def test_a_job_interrupted_on_every_allowed_start_fails_with_the_reason(service_settings, job_video):
    settings = await service_settings("spoton_jobs_attempts", job_max_attempts=1)
    first = await InferenceApp.create(settings)
    try:
        await first.warm_up()
        job = await first.jobs.upload(UploadRequest("a.mp4"), _chunks(job_video))
        await _wait(first, job.job_id, lambda j: j.state is JobState.RUNNING)
    finally:
        await first.close()
    second = await InferenceApp.create(settings)
    try:
        failed = await second.jobs.get(job.job_id)
        assert failed.state is JobState.FAILED and failed.attempts == 1
        assert "restart" in failed.error and "SPOTON_JOB_MAX_ATTEMPTS=1" in failed.error
    finally:
        await second.close()


async def test_an_upload_cut_off_by_the_end_of_the_process_is_removed_on_start(service_settings):
    settings = await service_settings("spoton_jobs_leftovers", replica_id="replica-1")
    leftover = settings.jobs_dir / "uploads" / "replica-1" / "cut-off.part"
    orphan = settings.jobs_dir / "0b6a2f3e-4b1e-4a8a-9d43-1f0d2f5f6a7b" / "environment.json"
    # Unrecorded but recent: another replica may be about to record its job.
    recent = settings.jobs_dir / "5d0f3c1e-8a1b-4c3e-9f2a-7b6e5d4c3b2a" / "environment.json"
    for path in (leftover, orphan, recent):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"partial")
    then = time.time() - ORPHAN_FILES_GRACE_S - 60
    for path in (orphan, orphan.parent):
        os.utime(path, (then, then))
    app = await InferenceApp.create(settings)
    try:
        assert not leftover.exists() and not orphan.parent.exists() and recent.exists()
    finally:
        await app.close()
