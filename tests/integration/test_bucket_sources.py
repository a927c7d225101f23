"""Recordings in object storage, as a user registers them: an environment from s3://bucket/prefix
(gRPC and REST) and a job from s3://bucket/key, against a real S3 server (SeaweedFS) and an
inference service set up with its endpoint and credentials. Each refusal names what is wrong
(the URI, the key); the credentials appear in no response."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from support.auth import admin_headers, authed_channel
from support.services import serving

from spoton.v1 import catalog_pb2, catalog_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from spoton_facade.settings import FacadeSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

JOB_TIMEOUT_S = 120.0


@pytest_asyncio.fixture(scope="module")
async def bucket_service(service_settings, s3_server) -> AsyncIterator[Any]:
    settings = await service_settings(
        "spoton_bucket_sources", job_max_upload_bytes=4 * 1024 * 1024, job_concurrency=1, **s3_server.s3_settings()
    )
    async with serving(settings) as app:
        yield app


@pytest_asyncio.fixture
async def stubs(
    bucket_service,
) -> AsyncIterator[tuple[catalog_pb2_grpc.CatalogServiceStub, jobs_pb2_grpc.JobServiceStub]]:
    target = f"{bucket_service.settings.grpc_host}:{bucket_service.settings.grpc_port}"
    async with authed_channel(target) as channel:
        yield catalog_pb2_grpc.CatalogServiceStub(channel), jobs_pb2_grpc.JobServiceStub(channel)


@pytest.fixture
def bucket(s3_server, job_video) -> str:
    """A bucket with the environment 'hall' under sites/hall (two cameras) and a loose video."""
    name = s3_server.create_bucket()
    doc = {"id": "hall", "name": "Hall", "cameras": [{"id": "c1"}, {"id": "c2"}]}
    s3_server.put(name, "sites/hall/environment.json", json.dumps(doc).encode())
    for camera in ("c1", "c2"):
        s3_server.put(name, f"sites/hall/cameras/{camera}/sub_video_01.mp4", job_video)
    s3_server.put(
        name, "sites/empty/environment.json", json.dumps({"id": "empty", "cameras": [{"id": "c1", "fps": 10}]}).encode()
    )
    s3_server.put(name, "videos/walk.mp4", job_video)
    return name


def _no_credentials(s3_server, *texts: str) -> None:
    for text in texts:
        assert s3_server.secret_key not in text and s3_server.access_key not in text


async def test_an_environment_is_registered_from_a_bucket_and_listed_with_its_uri(
    s3_server, bucket_service, stubs, bucket, serve_facade
):
    catalog, _ = stubs
    uri = f"s3://{bucket}/sites/hall"
    registered = (
        await catalog.RegisterEnvironmentFromDirectory(
            catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=uri), timeout=60
        )
    ).environment
    assert registered.source_dir == uri and registered.environment_id == "hall"
    assert [(c.camera_id, list(c.sub_videos), list(c.sub_video_frames)) for c in registered.cameras] == [
        ("c1", ["sub_video_01.mp4"], [30]),
        ("c2", ["sub_video_01.mp4"], [30]),
    ]
    assert (registered.cameras[0].width, registered.cameras[0].height, registered.cameras[0].fps) == (640, 480, 10.0)
    listed = await catalog.ListEnvironments(catalog_pb2.ListEnvironmentsRequest(), timeout=10)
    assert [e.source_dir for e in listed.environments if e.environment_id == "hall"] == [uri]
    # Probed in place: nothing of the recordings was downloaded to register them.
    assert not (bucket_service.settings.data_dir / "recordings-cache" / bucket).exists()

    facade = FacadeSettings(
        inference_target=f"{bucket_service.settings.grpc_host}:{bucket_service.settings.grpc_port}",
        media_root=bucket_service.settings.media_root,
    )
    async with (
        serve_facade(facade) as url,
        httpx.AsyncClient(headers=admin_headers(), base_url=url, timeout=60) as rest,
    ):
        again = await rest.post("/api/v1/environments/:register", json={"path": uri})
        shown = await rest.get("/api/v1/environments/hall")
        missing = await rest.post("/api/v1/environments/:register", json={"path": f"s3://{bucket}/sites/nowhere"})
    assert again.status_code == 200 and shown.json()["source_dir"] == uri
    assert missing.status_code == 404 and f"s3://{bucket}/sites/nowhere/environment.json" in missing.text
    _no_credentials(s3_server, str(registered), str(listed), again.text, shown.text, missing.text)


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        (
            "s3://{bucket}/sites/nowhere",
            grpc.StatusCode.NOT_FOUND,
            "s3://{bucket}/sites/nowhere/environment.json not found",
        ),
        (
            "s3://{bucket}/sites/empty",
            grpc.StatusCode.INVALID_ARGUMENT,
            "s3://{bucket}/sites/empty has no cameras/<id>/sub_video_NN.mp4",
        ),
        ("s3://Not_A_Bucket/x", grpc.StatusCode.INVALID_ARGUMENT, "not a valid bucket name"),
        (
            "s3://{access}:{secret}@{bucket}/sites/hall",
            grpc.StatusCode.INVALID_ARGUMENT,
            "credentials come from the server's settings",
        ),
    ],
)
async def test_a_bad_bucket_registration_is_refused_naming_what_is_wrong(s3_server, stubs, bucket, path, code, message):
    catalog, _ = stubs
    values = {"bucket": bucket, "access": s3_server.access_key, "secret": s3_server.secret_key}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await catalog.RegisterEnvironmentFromDirectory(
            catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=path.format(**values)), timeout=60
        )
    assert caught.value.code() == code
    assert message.format(**values) in caught.value.details()
    _no_credentials(s3_server, caught.value.details())


async def _completed(jobs: jobs_pb2_grpc.JobServiceStub, job_id: str) -> jobs_pb2.Job:
    async with asyncio.timeout(JOB_TIMEOUT_S):
        async for job in jobs.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id)):
            if job.state in (jobs_pb2.JOB_STATE_COMPLETED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED):
                return job
    raise AssertionError(f"job {job_id} never finished")


async def _source_job(jobs: jobs_pb2_grpc.JobServiceStub, source: str) -> jobs_pb2.Job:
    async def requests() -> AsyncIterator[jobs_pb2.UploadJobRequest]:
        yield jobs_pb2.UploadJobRequest(metadata=jobs_pb2.JobUploadMetadata(source=source, name="from the bucket"))

    return await jobs.UploadJob(requests(), timeout=60)


async def test_a_job_takes_its_video_from_a_bucket_and_completes(s3_server, bucket_service, stubs, bucket, job_video):
    _, jobs = stubs
    source = f"s3://{bucket}/videos/walk.mp4"
    job = await _source_job(jobs, source)
    assert job.state == jobs_pb2.JOB_STATE_QUEUED and job.filename == source
    assert job.size_bytes == job_video.stat().st_size and job.video.frames == 30
    # Fetched into the job's directory, the same bytes.
    fetched = bucket_service.settings.jobs_dir / job.job_id / "cameras" / "camera" / "sub_video_01.mp4"
    assert fetched.exists()
    done = await _completed(jobs, job.job_id)
    assert done.state == jobs_pb2.JOB_STATE_COMPLETED, done.error
    assert {r.name for r in done.results} == {"annotated.mp4", "events.json", "tracks.txt"}
    _no_credentials(s3_server, str(job), str(done))


async def test_a_job_from_a_missing_object_is_refused_naming_its_key_and_leaves_nothing(
    s3_server, bucket_service, stubs, bucket
):
    _, jobs = stubs
    before = sorted(p.name for p in bucket_service.settings.jobs_dir.iterdir())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _source_job(jobs, f"s3://{bucket}/videos/missing.mp4")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"s3://{bucket}/videos/missing.mp4" in caught.value.details()
    assert sorted(p.name for p in bucket_service.settings.jobs_dir.iterdir()) == before
    assert list(bucket_service.jobs.uploads_dir.glob("*")) == []
    _no_credentials(s3_server, caught.value.details())


async def test_a_job_from_a_bucket_over_rest(s3_server, bucket_service, bucket, serve_facade):
    settings = bucket_service.settings
    facade = FacadeSettings(
        inference_target=f"{settings.grpc_host}:{settings.grpc_port}", media_root=settings.media_root
    )
    async with (
        serve_facade(facade) as url,
        httpx.AsyncClient(headers=admin_headers(), base_url=url, timeout=60) as rest,
    ):
        made = await rest.post("/api/v1/jobs/:fetch", json={"source": f"s3://{bucket}/videos/walk.mp4", "fps": 10})
        missing = await rest.post("/api/v1/jobs/:fetch", json={"source": f"s3://{bucket}/videos/missing.mp4"})
        not_s3 = await rest.post("/api/v1/jobs/:fetch", json={"source": "/etc/passwd"})
    assert made.status_code == 201, made.text
    assert made.json()["filename"] == f"s3://{bucket}/videos/walk.mp4" and made.json()["fps_override"] == 10
    assert made.headers["location"].endswith(made.json()["job_id"])
    assert missing.status_code == 404 and f"s3://{bucket}/videos/missing.mp4" in missing.text
    assert not_s3.status_code == 400
    _no_credentials(s3_server, made.text, missing.text)


async def test_a_job_source_over_the_limit_or_no_video_is_refused_as_an_upload_would_be(
    s3_server, bucket_service, stubs, bucket
):
    _, jobs = stubs
    limit = bucket_service.settings.job_max_upload_bytes
    s3_server.put(bucket, "videos/huge.bin", b"\0" * (limit + 1))
    s3_server.put(bucket, "videos/notes.mp4", b"not a video")
    with pytest.raises(grpc.aio.AioRpcError) as huge:
        await _source_job(jobs, f"s3://{bucket}/videos/huge.bin")
    assert huge.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"s3://{bucket}/videos/huge.bin is {limit + 1} bytes" in huge.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as junk:
        await _source_job(jobs, f"s3://{bucket}/videos/notes.mp4")
    assert junk.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(junk.value.trailing_metadata() or ()).get("spoton-error-reason") == "unsupported-media-type"
    assert list(bucket_service.jobs.uploads_dir.glob("*")) == []
