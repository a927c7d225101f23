"""A real upload's job figures, as issue 17 found them wrong: OpenCV's ``vtest.avi`` (795 frames
of people walking, MPEG-4 part 2 in AVI) as the first job of a fresh service, followed with
WatchJob to its end. Processing and rendering speeds stay apart and are kept, the counts and
progress never go back, and the first time estimate is near the time the job really took (it
was 108 s against 70 s: rendering was counted at processing's speed, and start-up as
processing time)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from support.auth import authed_channel
from support.services import serving
from support.videos import VTEST

from spoton.v1 import jobs_pb2, jobs_pb2_grpc

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not VTEST.exists(), reason="vtest.avi is missing: run `make samples`"),
]

CHUNK = 1024 * 1024
UPLOAD_LIMIT_BYTES = 32 * 1024 * 1024
# How far the first estimate may be from the time the job really took, either way: the rate
# of the first seconds stands for the whole video, and this machine may be shared.
ETA_TOLERANCE = 0.5


@pytest_asyncio.fixture(scope="module")
async def fresh_service(service_settings) -> AsyncIterator[Any]:
    """A service with a database of its own: its first job has no earlier rendering to go by."""
    settings = await service_settings("spoton_job_figures", job_max_upload_bytes=UPLOAD_LIMIT_BYTES)
    async with serving(settings) as app:
        yield app


def _upload(filename: str, data: bytes) -> list[jobs_pb2.UploadJobRequest]:
    meta = jobs_pb2.UploadJobRequest(metadata=jobs_pb2.JobUploadMetadata(filename=filename, size_bytes=len(data)))
    return [meta] + [jobs_pb2.UploadJobRequest(chunk=data[i : i + CHUNK]) for i in range(0, len(data), CHUNK)]


async def test_a_real_uploads_figures_are_honest(fresh_service) -> None:
    settings = fresh_service.settings
    async with authed_channel(f"{settings.grpc_host}:{settings.grpc_port}") as channel:
        jobs = jobs_pb2_grpc.JobServiceStub(channel)
        job = await jobs.UploadJob(iter(_upload(VTEST.name, VTEST.read_bytes())))
        seen: list[tuple[float, jobs_pb2.Job]] = []
        async with asyncio.timeout(800):
            async for update in jobs.WatchJob(jobs_pb2.WatchJobRequest(job_id=job.job_id)):
                seen.append((time.monotonic(), update))
    ended_at, final = seen[-1]
    assert final.state == jobs_pb2.JOB_STATE_COMPLETED, final.error
    print(
        "\njob figures:",
        json.dumps(
            {
                "frames": final.total_frames,
                "processing_fps": final.frames_per_second,
                "processing_s": final.processing_seconds,
                "rendering_fps": final.rendering_frames_per_second,
                "rendering_s": final.rendering_seconds,
                "elapsed_s": final.elapsed_seconds,
                "samples": [
                    [round(t - seen[0][0], 2), m.step, m.frames_processed, m.frames_rendered, m.eta_seconds]
                    for t, m in seen
                ],
            }
        ),
    )

    # Each step's speed is its frames over its seconds, kept once the job is over.
    assert final.frames_processed == final.total_frames == 795
    assert final.frames_per_second > 0
    assert final.frames_per_second == pytest.approx(final.frames_processed / final.processing_seconds, rel=0.01)
    assert final.frames_rendered == final.total_frames
    assert final.rendering_frames_per_second == pytest.approx(final.frames_rendered / final.rendering_seconds, rel=0.01)
    assert final.rendering_frames_per_second != final.frames_per_second
    updates = [m for _, m in seen]
    for figure in ("progress", "frames_processed", "frames_rendered"):
        values = [getattr(m, figure) for m in updates]
        assert values == sorted(values), f"{figure} went back"
    assert all(m.frames_processed == final.total_frames for m in updates if m.step == "rendering")

    # The first estimate against the time that was really left then.
    estimated_at, first = next((t, m) for t, m in seen if m.step == "processing" and m.eta_seconds > 0)
    left = ended_at - estimated_at
    print(f"first estimate {first.eta_seconds:.1f} s at {first.frames_processed} frames; {left:.1f} s were left")
    assert abs(first.eta_seconds - left) <= ETA_TOLERANCE * left
