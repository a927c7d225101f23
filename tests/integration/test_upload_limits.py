"""Uploads are stored once, capped, checked against the disk, and retried without duplicates.

Over the job tests' service (``jobs_service``: uploads up to 4 MiB, the default cap of 2 at
once) and, for a full disk, a service whose reserve is larger than the disk's free space. Each
refusal gets its status (gRPC, and REST through the facade) and leaves no file behind."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from support.auth import ADMIN_API_KEY, admin_headers, authed_channel

from spoton.v1 import jobs_pb2, jobs_pb2_grpc
from spoton_facade.settings import FacadeSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _reason(exc: grpc.aio.AioRpcError) -> str | None:
    return dict(exc.trailing_metadata() or ()).get("spoton-error-reason")


def _parts(app: Any) -> list[Path]:
    """The service's uploads in progress (in its replica's own uploads directory)."""
    uploads = app.jobs.uploads_dir
    return sorted(uploads.glob("*")) if uploads.exists() else []


async def _until(predicate: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not predicate():  # noqa: ASYNC110 (files on disk: nothing to wait on but a look)
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not seen within {timeout_s} s: {what}") from None


def _requests(meta: jobs_pb2.JobUploadMetadata, data: bytes, hold: asyncio.Event | None = None):
    async def requests() -> AsyncIterator[jobs_pb2.UploadJobRequest]:
        yield jobs_pb2.UploadJobRequest(metadata=meta)
        for i in range(0, len(data), 1024 * 1024):
            yield jobs_pb2.UploadJobRequest(chunk=data[i : i + 1024 * 1024])
        if hold is not None:  # the client stops sending but stays connected
            await hold.wait()

    return requests()


@pytest_asyncio.fixture
async def jobs_stub(jobs_service) -> AsyncIterator[jobs_pb2_grpc.JobServiceStub]:
    async with authed_channel(jobs_service.target) as channel:
        yield jobs_pb2_grpc.JobServiceStub(channel)


@pytest_asyncio.fixture
async def rest(jobs_service, serve_facade) -> AsyncIterator[httpx.AsyncClient]:
    settings = FacadeSettings(
        inference_target=jobs_service.target,
        media_root=jobs_service.settings.media_root,
        job_max_upload_bytes=jobs_service.settings.job_max_upload_bytes,
    )
    async with (
        serve_facade(settings) as url,
        httpx.AsyncClient(headers=admin_headers(), base_url=url, timeout=60) as client,
    ):
        yield client


async def _cancel(jobs_stub, *job_ids: str) -> None:
    """Jobs these tests queued need not run."""
    for job_id in job_ids:
        job = await jobs_stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id))
        if job.state in (jobs_pb2.JOB_STATE_QUEUED, jobs_pb2.JOB_STATE_RUNNING):
            await jobs_stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=job_id))


def _job_of(path: Path) -> str | None:
    """The job a stored file belongs to, from its path in the data directory (``jobs/<id>/…``
    or ``…/job-<id>/…``)."""
    for parent, part in zip(path.parts, path.parts[1:], strict=False):
        if parent == "jobs":
            return part
        if part.startswith("job-"):
            return part.removeprefix("job-")
    return None


async def test_an_accepted_upload_is_stored_once(jobs_stub, jobs_service):
    video = jobs_service.video.read_bytes()
    meta = jobs_pb2.JobUploadMetadata(filename="once.mp4", size_bytes=len(video))
    job = await jobs_stub.UploadJob(_requests(meta, video))
    await _cancel(jobs_stub, job.job_id)
    data_dir = jobs_service.settings.data_dir
    stored = jobs_service.settings.jobs_dir / job.job_id / "cameras" / "camera" / "sub_video_01.mp4"
    # Other tests on this service upload the same video: their jobs' own files (under jobs/<id>
    # and, hard-linked, under their tasks' job-<id> environments) do not count.
    copies = {
        (p.stat().st_dev, p.stat().st_ino)
        for p in data_dir.rglob("*")
        if p.is_file()
        and p.stat().st_size == len(video)
        and _job_of(p.relative_to(data_dir)) in (None, job.job_id)
        and p.read_bytes() == video
    }
    assert copies == {(stored.stat().st_dev, stored.stat().st_ino)}
    assert _parts(jobs_service.app) == []


async def test_a_retried_upload_answers_the_first_job(jobs_stub, jobs_service):
    video = jobs_service.video.read_bytes()
    meta = jobs_pb2.JobUploadMetadata(filename="retry.mp4", name="retried", idempotency_key=str(uuid.uuid4()))
    first = await jobs_stub.UploadJob(_requests(meta, video))
    # The retry is answered from the key, at once: its file is never read (here it never ends).
    never_sent = asyncio.Event()
    again = await asyncio.wait_for(jobs_stub.UploadJob(_requests(meta, video, hold=never_sent)), 20)
    assert again.job_id == first.job_id
    page = await jobs_stub.ListJobs(jobs_pb2.ListJobsRequest(page_size=200))
    assert [j.job_id for j in page.jobs if j.name == "retried"] == [first.job_id]

    other = jobs_pb2.JobUploadMetadata(filename="retry.mp4", name="another", idempotency_key=meta.idempotency_key)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await jobs_stub.UploadJob(_requests(other, video))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _reason(refused.value) == "idempotency-key-reused"
    await _cancel(jobs_stub, first.job_id)
    assert _parts(jobs_service.app) == []


async def test_the_same_key_while_its_first_upload_streams_is_refused_then_answered(jobs_stub, jobs_service):
    video = jobs_service.video.read_bytes()
    meta = jobs_pb2.JobUploadMetadata(filename="race.mp4", idempotency_key=str(uuid.uuid4()))
    release = asyncio.Event()
    pending: list[jobs_pb2.UploadJobRequest] = []

    async def slow() -> AsyncIterator[jobs_pb2.UploadJobRequest]:
        async for request in _requests(meta, video):
            pending.append(request)
            if len(pending) == 2:  # the metadata and one chunk are in; the rest waits
                await release.wait()
            yield request

    first = asyncio.ensure_future(jobs_stub.UploadJob(slow()))
    await _until(lambda: len(_parts(jobs_service.app)) == 1, "the first upload streaming")
    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await jobs_stub.UploadJob(_requests(meta, video))
    assert busy.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _reason(busy.value) == "idempotency-key-in-use"
    release.set()
    job = await first
    assert (await jobs_stub.UploadJob(_requests(meta, video))).job_id == job.job_id
    await _cancel(jobs_stub, job.job_id)


async def test_uploads_over_the_cap_are_refused_and_cancelled_ones_leave_nothing(jobs_stub, jobs_service, rest):
    cap = jobs_service.settings.max_concurrent_uploads
    hold = asyncio.Event()
    video = jobs_service.video.read_bytes()
    streaming = [
        jobs_stub.UploadJob(_requests(jobs_pb2.JobUploadMetadata(filename=f"{i}.mp4"), video[:1000], hold))
        for i in range(cap)
    ]
    try:
        await _until(lambda: len(_parts(jobs_service.app)) == cap, "the capped uploads streaming")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await jobs_stub.UploadJob(_requests(jobs_pb2.JobUploadMetadata(filename="one-more.mp4"), video))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _reason(refused.value) == "too-many-uploads"
        assert "SPOTON_MAX_CONCURRENT_UPLOADS" in refused.value.details()

        over = await rest.post("/api/v1/jobs", files={"file": ("one-more.mp4", video, "video/mp4")})
        assert over.status_code == 503, over.text
        assert over.headers["content-type"] == "application/problem+json"
        assert int(over.headers["retry-after"]) > 0
    finally:
        for call in streaming:
            call.cancel()
    await _until(lambda: _parts(jobs_service.app) == [], "the cancelled uploads' files removed")
    job = await jobs_stub.UploadJob(_requests(jobs_pb2.JobUploadMetadata(filename="after.mp4"), video))
    await _cancel(jobs_stub, job.job_id)  # a slot was free again


async def test_rest_uploads_stream_through_to_the_service_and_a_dropped_one_leaves_nothing(rest, jobs_service):
    """The facade keeps no copy: the service's file grows while the client is still sending,
    and goes when the client goes."""
    host, port = rest.base_url.host, rest.base_url.port
    _, writer = await asyncio.open_connection(host, port)
    block = b"\0" * 256 * 1024
    try:
        writer.write(
            b"POST /api/v1/jobs HTTP/1.1\r\nHost: facade\r\nTransfer-Encoding: chunked\r\n"
            b"Authorization: Bearer %s\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n" % ADMIN_API_KEY.encode()
        )
        head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="slow.mp4"\r\n\r\n'
        writer.write(b"%x\r\n%s\r\n" % (len(head), head))
        for _ in range(8):
            writer.write(b"%x\r\n%s\r\n" % (len(block), block))
        await writer.drain()

        def received() -> int:
            return sum(p.stat().st_size for p in _parts(jobs_service.app))

        # Past the facade's queue (4 chunks of 1 MiB would be 4 MiB; this body has 2 MiB, all of
        # it regrouped into 2 messages): the service holds the whole 2 MiB before the body ends.
        await _until(lambda: received() >= 2 * 1024 * 1024, "the service receiving the file before its end")
    finally:
        writer.close()
    await _until(lambda: _parts(jobs_service.app) == [], "the dropped upload's file removed")


async def test_the_idempotency_key_header_on_rest_uploads(rest, jobs_stub, jobs_service):
    video = jobs_service.video.read_bytes()
    headers = {"Idempotency-Key": f'"{uuid.uuid4()}"'}
    form = {"name": "rest retried"}
    first = await rest.post("/api/v1/jobs", data=form, files={"file": ("a.mp4", video, "video/mp4")}, headers=headers)
    assert first.status_code == 201, first.text
    again = await rest.post("/api/v1/jobs", data=form, files={"file": ("a.mp4", video, "video/mp4")}, headers=headers)
    assert again.status_code == 201 and again.json()["job_id"] == first.json()["job_id"]
    other = await rest.post(
        "/api/v1/jobs", data={"name": "other"}, files={"file": ("a.mp4", video, "video/mp4")}, headers=headers
    )
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
    await _cancel(jobs_stub, first.json()["job_id"])
    assert _parts(jobs_service.app) == []


# -- a full disk: a service whose reserve is more than the disk has free ----------------------


@pytest_asyncio.fixture(scope="module")
async def full_disk_service(service_settings) -> AsyncIterator[Any]:
    from spoton_inference.app import InferenceApp
    from spoton_inference.grpc_server import build_server

    settings = await service_settings("spoton_full_disk", job_max_upload_bytes=4 * 1024 * 1024)
    free = shutil.disk_usage(settings.data_dir).free
    settings = dataclasses.replace(settings, upload_disk_reserve_bytes=10 * free)
    app = await InferenceApp.create(settings)
    server, _ = build_server(app)
    await server.start()
    try:
        yield app, f"{settings.grpc_host}:{settings.grpc_port}"
    finally:
        await server.stop(grace=1.0)
        await app.close()


async def test_an_upload_that_would_not_fit_is_refused_with_507(full_disk_service, serve_facade, job_video):
    app, target = full_disk_service
    video = job_video.read_bytes()
    async with authed_channel(target) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        for size in (len(video), 0):  # announced, or found out as it streams
            meta = jobs_pb2.JobUploadMetadata(filename="big.mp4", size_bytes=size)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.UploadJob(_requests(meta, video))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert _reason(refused.value) == "insufficient-storage"
            assert "SPOTON_UPLOAD_DISK_RESERVE_BYTES" in refused.value.details()
    settings = FacadeSettings(inference_target=target, media_root=app.settings.media_root)
    async with (
        serve_facade(settings) as url,
        httpx.AsyncClient(headers=admin_headers(), base_url=url, timeout=60) as client,
    ):
        response = await client.post("/api/v1/jobs", files={"file": ("big.mp4", video, "video/mp4")})
    assert response.status_code == 507, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "disk space" in response.json()["detail"]
    assert _parts(app) == []
    assert not any(app.settings.jobs_dir.glob("*-*"))  # no job directory either
