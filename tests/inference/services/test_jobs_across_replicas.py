"""Two inference replicas on one PostgreSQL, one Redis and one jobs directory share the job
queue: a replica starting up leaves the other's running job alone, an upload one replica
received is run by the other while the first is busy (and cancelled through either), and once
the first is down (its lease gone) the other takes its running job back and runs it. Real Triton, PostgreSQL and Redis;
the finer cases are in test_jobs_replicas.py."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from spoton_inference.app import InferenceApp
from spoton_inference.domain.job_types import JobRecord, JobState
from spoton_inference.embedded.ports import pick_free_ports
from spoton_inference.services.jobs import UploadRequest
from spoton_inference.services.tasks import TaskAction

pytestmark = pytest.mark.timeout(300)

# Short, so that the survivor's sweep (every TTL / 4) comes soon after the other is gone; long
# enough that a busy event loop shared by both replicas never lets a lease lapse.
LEASE_TTL_S = 10.0


async def _chunks(path: Path, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    data = path.read_bytes()
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _wait(app: InferenceApp, job_id: str, done: Callable[[JobRecord], bool], timeout_s: float = 120) -> JobRecord:
    async with asyncio.timeout(timeout_s):
        while True:
            job = await app.jobs.get(job_id)
            if done(job):
                return job
            await asyncio.sleep(0.02)


async def _owner(app: InferenceApp, job_id: str) -> str:
    async with app.db.pool.acquire() as conn:
        return await conn.fetchval("SELECT owner FROM jobs WHERE job_id = $1", uuid.UUID(job_id))


def _long_video(path: Path, frames: int = 600) -> Path:
    """A video long enough that its job is still processing when the test pauses or cancels it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(frames):
        writer.write(np.full((120, 160, 3), (5 * i) % 255, np.uint8))
    writer.release()
    return path


async def test_replicas_share_the_job_queue_and_take_back_a_lost_replicas_jobs(
    service_settings, make_data_dir, job_video
):
    jobs_dir = make_data_dir("replicas-jobs")
    settings_a = dataclasses.replace(
        await service_settings(
            "spoton_jobs_replicas", replica_id="replica-a", job_concurrency=1, replica_lease_ttl_s=LEASE_TTL_S
        ),
        jobs_dir=jobs_dir,
    )
    data_b = make_data_dir("replica-b")
    # Its own data directory, media root and port; the same database, Redis and jobs directory.
    port_b = pick_free_ports(1)[0]
    settings_b = dataclasses.replace(
        settings_a, replica_id="replica-b", data_dir=data_b, media_root=data_b / "media", grpc_port=port_b
    )
    long_video = _long_video(make_data_dir("long-video") / "long.mp4")
    a = await InferenceApp.create(settings_a)
    a_up, b = True, None
    try:
        await a.warm_up()
        # a runs a job, held paused: a is busy (one job at a time) for as long as the test wants.
        busy = await a.jobs.upload(UploadRequest("long.mp4", name="held on a"), _chunks(long_video))
        busy = await _wait(a, busy.job_id, lambda j: j.state is JobState.RUNNING and bool(j.task_id))
        await a.tasks.control(busy.task_id, TaskAction.PAUSE)

        b = await InferenceApp.create(settings_b)
        # b's start-up recovery left a's running job alone: a is alive.
        held = await b.jobs.get(busy.job_id)
        assert (held.state, held.attempts, held.task_id) == (JobState.RUNNING, 1, busy.task_id)
        assert await _owner(b, busy.job_id) == "replica-a"

        await b.warm_up()  # b's queue starts
        # An upload a receives while busy is run by b, and a cancel sent to a reaches it there.
        elsewhere = await a.jobs.upload(UploadRequest("long.mp4", name="cancelled through a"), _chunks(long_video))
        await _wait(b, elsewhere.job_id, lambda j: j.state is JobState.RUNNING and j.step == "processing")
        assert await _owner(b, elsewhere.job_id) == "replica-b"
        cancelled = await a.jobs.cancel(elsewhere.job_id)
        assert cancelled.state is JobState.CANCELLED and not cancelled.results
        # Another, run by b to the end from the files in the shared jobs directory.
        other = await a.jobs.upload(UploadRequest("b.mp4", name="uploaded to a"), _chunks(job_video))
        done = await _wait(b, other.job_id, lambda j: j.state.is_final)
        assert done.state is JobState.COMPLETED, done.error
        assert await _owner(b, other.job_id) == "replica-b"
        assert (jobs_dir / other.job_id / "cameras" / "camera" / "sub_video_01.mp4").is_file()
        assert all((settings_b.media_root / r.media_path).is_file() for r in done.results)
        assert (await a.jobs.get(busy.job_id)).state is JobState.RUNNING  # a still holds its job

        # a goes down: its job stays RUNNING under its name, its lease is gone, b takes it back.
        await a.close()
        a_up = False
        await _wait(b, busy.job_id, lambda j: j.state is JobState.RUNNING and j.attempts == 2, 60)
        assert await _owner(b, busy.job_id) == "replica-b"
        cancelled = await b.jobs.cancel(busy.job_id)
        assert cancelled.state is JobState.CANCELLED
    finally:
        if a_up:
            await a.close()
        if b is not None:
            await b.close()
