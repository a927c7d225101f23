"""Tasks over environments whose recordings are in an S3 bucket (a real SeaweedFS server).

One service with a recording cache that holds little more than two batches: a task over three
batches downloads batch k before it is announced, prefetches k + 1 while k is processed (so it
waits for downloads only before the first), evicts what it no longer needs, stays within the
limit, serves its media with Range, and tracks exactly what the same recordings on local disk
give. A missing object fails the task naming its key; a server that goes away and comes back
is waited out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from support.auth import admin_headers
from support.services import serving

from spoton_facade.settings import FacadeSettings
from spoton_inference.domain.events import TaskState
from spoton_inference.pipeline.runner import TRACKING_EXPORT
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate
from spoton_inference.storage.task_store import TaskStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
FINAL = {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}
BATCHES = 3
# With the bandwidth of loopback, a prefetched batch is local long before it is needed.
PREFETCHED_WAIT_S = 0.25


@pytest.fixture(scope="module")
def scene(make_data_dir) -> Path:
    config = dataclasses.replace(demo_config(seed=5), frames_per_batch=20, n_batches=BATCHES, n_people=5)
    return generate(config, make_data_dir("bucket-tasks") / "site")


def _batch_bytes(scene: Path) -> list[int]:
    return [sum(p.stat().st_size for p in scene.glob(f"cameras/*/sub_video_{k + 1:02d}.mp4")) for k in range(BATCHES)]


@pytest.fixture(scope="module")
def cache_limit(scene) -> int:
    """Room for the batch being processed and the one prefetched, not for the whole task."""
    sizes = _batch_bytes(scene)
    limit = max(a + b for a, b in itertools.pairwise(sizes)) + min(sizes) // 2
    assert limit < sum(sizes)
    return limit


@pytest_asyncio.fixture(scope="module")
async def service(service_settings, s3_server, cache_limit) -> AsyncIterator[Any]:
    settings = await service_settings(
        "spoton_bucket_tasks", recording_cache_max_bytes=cache_limit, **s3_server.s3_settings(s3_outage_wait_s=60.0)
    )
    async with serving(settings) as app:
        yield app


def _upload(s3_server, scene: Path, bucket: str, prefix: str, environment_id: str) -> str:
    doc = json.loads((scene / "environment.json").read_text())
    s3_server.put(bucket, f"{prefix}/environment.json", json.dumps({**doc, "id": environment_id}).encode())
    for video in sorted(scene.glob("cameras/*/sub_video_*.mp4")):
        s3_server.put(bucket, f"{prefix}/{video.relative_to(scene)}", video)
    return f"s3://{bucket}/{prefix}"


async def _run(app, environment_id: str) -> Any:
    task = await app.tasks.start(environment_id, [], allow_concurrent=True)
    return await _until_final(app, task.task_id)


async def _until_final(app, task_id: str) -> Any:
    async with asyncio.timeout(300):
        while True:  # the record in PostgreSQL, polled as a client would
            record = await app.tasks.get(task_id)
            if record.state in FINAL:
                return record
            await asyncio.sleep(0.1)


def _tracking(app, task_id: str) -> dict:
    return json.loads((app.settings.media_root / "tasks" / task_id / "exports" / TRACKING_EXPORT).read_text())


async def test_a_task_over_a_bucket_prefetches_evicts_and_tracks_as_from_disk(
    service, s3_server, scene, cache_limit, serve_facade
):
    bucket = s3_server.create_bucket()
    uri = _upload(s3_server, scene, bucket, "sites/hall", "hall-s3")
    remote = await service.catalog.register_directory(uri)
    local = await service.catalog.register_directory(str(scene))
    cache = service.recording_cache
    used: list[int] = []

    async def sample() -> None:
        while True:  # the cache's own figure, sampled while the task runs
            used.append(cache.used_bytes)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    try:
        from_bucket = await _run(service, remote.environment_id)
    finally:
        sampler.cancel()
    assert from_bucket.state == TaskState.COMPLETED, from_bucket.error
    waits = _tracking(service, from_bucket.task_id)["download_wait_s"]
    assert len(waits) == BATCHES and max(waits[1:]) < PREFETCHED_WAIT_S, waits
    assert 0 < max(used) <= cache_limit
    assert not any(cache.pinned(f"{from_bucket.task_id}/{k}") for k in range(BATCHES))  # all released
    figures = service.recording_figures()  # what /metrics shows
    assert figures.bytes_received >= sum(_batch_bytes(scene)) and figures.cache_limit_bytes == cache_limit
    kept = list(cache.root.rglob("sub_video_*.mp4"))  # some were evicted to stay within the limit
    assert len(kept) < len(list(scene.glob("cameras/*/sub_video_*.mp4")))
    assert sum(p.stat().st_size for p in kept) <= cache_limit

    from_disk = await _run(service, local.environment_id)
    store = TaskStore(service.db)
    rows = [tuple(r) for r in await store.task_track_points(from_bucket.task_id)]
    assert len(rows) > 100
    assert rows == [tuple(r) for r in await store.task_track_points(from_disk.task_id)]

    # The media it announced is served, with Range, however the cache evicted since.
    camera = remote.cameras[0].camera_id
    rel = f"tasks/{from_bucket.task_id}/environments/hall-s3/cameras/{camera}/sub_videos/sub_video_01.mp4"
    facade = FacadeSettings(
        inference_target=f"{service.settings.grpc_host}:{service.settings.grpc_port}",
        media_root=service.settings.media_root,
    )
    async with serve_facade(facade) as url, httpx.AsyncClient(base_url=url, headers=admin_headers()) as http:
        reply = await http.get(f"{service.settings.media_url_prefix}/{rel}", headers={"Range": "bytes=0-99"})
    assert reply.status_code == 206 and len(reply.content) == 100, reply.text[:200]


async def test_a_missing_object_fails_the_task_naming_its_key(service, s3_server, scene):
    bucket = s3_server.create_bucket()
    uri = _upload(s3_server, scene, bucket, "sites/gone", "gone-s3")
    env = await service.catalog.register_directory(uri)
    key = "sites/gone/cameras/c02/sub_video_02.mp4"
    s3_server.client().delete_object(Bucket=bucket, Key=key)
    record = await _run(service, env.environment_id)
    assert record.state == TaskState.FAILED and f"s3://{bucket}/{key}" in record.error, record.error
    assert s3_server.access_key not in record.error and s3_server.secret_key not in record.error


async def test_a_server_that_goes_away_is_waited_out(service, s3_server, scene):
    bucket = s3_server.create_bucket()
    uri = _upload(s3_server, scene, bucket, "sites/outage", "outage-s3")
    env = await service.catalog.register_directory(uri)
    retries = service.recording_figures().retries
    s3_server.stop()
    try:
        task = await service.tasks.start(env.environment_id, [], allow_concurrent=True)
        running = asyncio.create_task(_until_final(service, task.task_id))
        await asyncio.sleep(2.0)  # the first batch's download is being retried meanwhile
        waiting = await service.tasks.get(task.task_id)
        assert waiting.state == TaskState.PREPARING and "downloading 0.0 of" in waiting.step, waiting
        assert not running.done()
    finally:
        s3_server.start()
    record = await running
    assert record.state == TaskState.COMPLETED, record.error
    assert _tracking(service, record.task_id)["download_wait_s"][0] >= 1.5
    assert service.recording_figures().retries > retries
