"""JobService on real parts: a generated video uploaded in chunks becomes an annotated H.264
video, events and MOT tracks; bad, oversized and abandoned uploads leave nothing behind;
cancel, delete, listing and WatchJob behave as documented."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import asyncpg
import av
import cv2
import grpc
import numpy as np
import pytest
import pytest_asyncio
from support.auth import admin_metadata, authed_channel

from spoton.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)

pytestmark = pytest.mark.timeout(300)

CHUNK = 64 * 1024
FINAL = (jobs_pb2.JOB_STATE_COMPLETED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED)
# The lower part of the 640x480 frame onto a 10 m x 10 m floor: the bottom edge is y = 0.
FLOOR = catalog_pb2.Homography(
    image_points=[common_pb2.MapPoint(x=u, y=v) for u, v in ((0, 480), (640, 480), (640, 200), (0, 200))],
    map_points=[common_pb2.MapPoint(x=x, y=y) for x, y in ((0, 0), (10, 0), (10, 10), (0, 10))],
)


def _zone(zone_id: str, *corners: tuple[float, float], name: str = "") -> analytics_pb2.Zone:
    return analytics_pb2.Zone(zone_id=zone_id, name=name, polygon=[common_pb2.MapPoint(x=x, y=y) for x, y in corners])


@pytest_asyncio.fixture(scope="module")
async def channel(jobs_service) -> AsyncIterator[grpc.aio.Channel]:
    async with authed_channel(jobs_service.target) as channel:
        yield channel


@pytest.fixture(scope="module")
def jobs(channel) -> jobs_pb2_grpc.JobServiceStub:
    return jobs_pb2_grpc.JobServiceStub(channel)


def _requests(data: bytes, filename: str = "hall.mp4", **metadata) -> list[jobs_pb2.UploadJobRequest]:
    first = jobs_pb2.UploadJobRequest(metadata=jobs_pb2.JobUploadMetadata(filename=filename, **metadata))
    return [first] + [jobs_pb2.UploadJobRequest(chunk=data[i : i + CHUNK]) for i in range(0, len(data), CHUNK)]


async def _upload(jobs, video: Path, **metadata) -> jobs_pb2.Job:
    return await jobs.UploadJob(iter(_requests(video.read_bytes(), **metadata)))


async def _wait(jobs, job_id: str, done, timeout_s: float = 120) -> jobs_pb2.Job:
    async with asyncio.timeout(timeout_s):
        while True:
            job = await jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job_id))
            if done(job):
                return job
            await asyncio.sleep(0.02)


async def _until(predicate, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.02)


def _left_files(settings) -> list[str]:
    """Every file under the service's job directories, uploads in progress included."""
    roots = [settings.jobs_dir, settings.media_root / "jobs"]
    return sorted(str(p) for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


@dataclasses.dataclass(frozen=True)
class Completed:
    """One job run to completion: UploadJob's reply, its final state, and every snapshot
    WatchJob sent on the way."""

    uploaded: jobs_pb2.Job
    final: jobs_pb2.Job
    seen: list[jobs_pb2.Job]


@pytest_asyncio.fixture(scope="module")
async def completed(jobs, jobs_service) -> Completed:
    job = await _upload(jobs, jobs_service.video, name="Hall, south wall")
    seen = [m async for m in jobs.WatchJob(jobs_pb2.WatchJobRequest(job_id=job.job_id), timeout=180)]
    return Completed(job, seen[-1], seen)


async def test_upload_answers_a_queued_job_with_what_the_probe_found(completed, jobs_service):
    reply = completed.uploaded
    assert reply.state == jobs_pb2.JOB_STATE_QUEUED and reply.job_id == completed.final.job_id
    for job in (reply, completed.seen[0]):
        assert job.name == "Hall, south wall" and job.filename == "hall.mp4"
        assert job.size_bytes == jobs_service.video.stat().st_size
        assert (job.video.codec, job.video.width, job.video.height) == ("h264", 640, 480)
        assert job.video.fps == pytest.approx(10.0) and job.video.frames == 30
        assert job.environment_id == f"job-{job.job_id}" and job.camera_id == "camera"


async def test_progress_climbs_through_processing_and_rendering_with_an_eta(completed):
    final, seen = completed.final, completed.seen
    assert final.state == jobs_pb2.JOB_STATE_COMPLETED, final.error
    assert final.progress == pytest.approx(1.0) and final.frames_processed == final.total_frames == 30
    revisions = [m.revision for m in seen]
    assert revisions == sorted(set(revisions)), "WatchJob sends each revision once, in order"
    running = [m for m in seen if m.state == jobs_pb2.JOB_STATE_RUNNING]
    assert "processing" in [m.step for m in running]
    progress = [m.progress for m in running]
    assert progress == sorted(progress) and all(0 <= p <= 1 for p in progress)
    measured = [m for m in running if m.HasField("eta_seconds")]
    assert measured, "an ETA once a frame rate was measured"
    assert all(m.eta_seconds >= 0 and m.frames_per_second > 0 for m in measured)
    assert final.attempts == 1 and final.started_at.seconds and final.finished_at.seconds


async def test_each_steps_figures_are_kept_after_completion(completed, channel):
    """Processing and rendering speeds are measured apart and kept; what WatchJob sent on the way
    never went back."""
    final, seen = completed.final, completed.seen
    assert final.state == jobs_pb2.JOB_STATE_COMPLETED, final.error
    assert final.frames_processed == final.total_frames and final.processing_seconds > 0
    assert final.frames_per_second > 0
    assert final.frames_per_second == pytest.approx(final.frames_processed / final.processing_seconds, rel=0.02)
    assert final.frames_rendered == final.total_frames and final.rendering_seconds > 0
    assert final.rendering_frames_per_second == pytest.approx(final.frames_rendered / final.rendering_seconds, rel=0.02)
    assert final.eta_seconds == 0
    started, finished = final.started_at.ToDatetime(), final.finished_at.ToDatetime()
    assert final.elapsed_seconds == pytest.approx((finished - started).total_seconds(), abs=0.01)
    assert final.elapsed_seconds >= final.processing_seconds + final.rendering_seconds
    for figure in ("progress", "frames_processed", "frames_rendered", "processing_seconds"):
        values = [getattr(m, figure) for m in seen]
        assert values == sorted(values), f"{figure} went back: {values}"
    # WatchJob sends the latest state, so a short rendering step can pass between two sends on a
    # busy machine; whatever rendering snapshots came keep processing's figures
    # (tests/inference/services/test_job_progress.py checks every one).
    rendering = [m for m in seen if m.step == "rendering"]
    assert all(m.frames_processed == final.frames_processed for m in rendering)
    assert all(m.frames_per_second == final.frames_per_second for m in rendering)  # not rendering's speed
    # The environment it ran as is a job's, kept apart from sites.
    catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
    origin = catalog_pb2.ENVIRONMENT_ORIGIN_JOB
    jobs_only = await catalog.ListEnvironments(catalog_pb2.ListEnvironmentsRequest(origin=origin))
    assert final.environment_id in [e.environment_id for e in jobs_only.environments]
    sites = await catalog.ListEnvironments(
        catalog_pb2.ListEnvironmentsRequest(origin=catalog_pb2.ENVIRONMENT_ORIGIN_SITE)
    )
    assert final.environment_id not in [e.environment_id for e in sites.environments]


async def test_the_results_are_an_h264_video_events_and_mot_tracks(completed, jobs_service, jobs):
    final = completed.final
    results = {r.kind: r for r in final.results}
    assert set(results) == {
        jobs_pb2.JOB_RESULT_KIND_VIDEO,
        jobs_pb2.JOB_RESULT_KIND_EVENTS,
        jobs_pb2.JOB_RESULT_KIND_TRACKS,
    }
    media = jobs_service.settings.media_root
    video = media / results[jobs_pb2.JOB_RESULT_KIND_VIDEO].media_path
    assert results[jobs_pb2.JOB_RESULT_KIND_VIDEO].url == f"/api/v1/media/jobs/{final.job_id}/annotated.mp4"
    assert results[jobs_pb2.JOB_RESULT_KIND_VIDEO].size_bytes == video.stat().st_size

    # Browsers play it: H.264, yuv420p, the moov atom before the media data, every frame there.
    data = video.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        annotated = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert len(annotated) == 30

    tracks = (media / results[jobs_pb2.JOB_RESULT_KIND_TRACKS].media_path).read_text().splitlines()
    rows = [[float(v) for v in line.split(",")] for line in tracks]
    assert rows and all(len(r) == 10 and 1 <= r[0] <= 30 and r[1] > 0 and r[7:] == [-1, -1, -1] for r in rows)
    # The boxes are drawn: where a track is, the annotated frame differs from the source frame.
    capture = cv2.VideoCapture(str(jobs_service.video))
    source = [capture.read()[1] for _ in range(30)]
    capture.release()
    frame, _, x, y, w = (int(v) for v in rows[len(rows) // 2][:5])
    edge = np.s_[max(y - 3, 0) : y + 4, max(x, 0) : x + w]  # the box's top edge
    changed = np.abs(annotated[frame - 1][edge].astype(int) - source[frame - 1][edge].astype(int)).mean()
    assert changed > 20, changed

    events = json.loads((media / results[jobs_pb2.JOB_RESULT_KIND_EVENTS].media_path).read_text())["events"]
    kinds = {e["type"] for e in events}
    assert {"appeared", "left"} <= kinds
    assert all(e["frame"] >= 1 and e["time_s"] == pytest.approx((e["frame"] - 1) / 10) for e in events)
    assert {e["global_id"] for e in events if e["type"] == "appeared"} == {int(r[1]) for r in rows}

    # The same bytes over gRPC, for clients without the facade.
    call = jobs.GetJobResult(jobs_pb2.GetJobResultRequest(job_id=final.job_id, kind=jobs_pb2.JOB_RESULT_KIND_VIDEO))
    assert b"".join([c.data async for c in call]) == data


async def test_the_job_is_a_single_camera_environment_and_a_task(completed, channel):
    final = completed.final
    env = await catalog_pb2_grpc.CatalogServiceStub(channel).GetEnvironment(
        catalog_pb2.GetEnvironmentRequest(environment_id=final.environment_id)
    )
    assert [(c.camera_id, list(c.sub_videos), c.HasField("homography")) for c in env.cameras] == [
        ("camera", ["sub_video_01.mp4"], False)
    ]
    task = await tasks_pb2_grpc.TaskServiceStub(channel).GetTask(tasks_pb2.GetTaskRequest(task_id=final.task_id))
    assert task.state == tasks_pb2.TASK_STATE_COMPLETED and task.environment_id == final.environment_id


async def test_watch_resumes_after_a_revision_and_ends_at_once_when_nothing_follows(completed, jobs):
    final = completed.final
    rest = [m async for m in jobs.WatchJob(jobs_pb2.WatchJobRequest(job_id=final.job_id, after_revision=1))]
    assert [m.revision for m in rest] == [final.revision]  # a finished job: only its final state
    none = [
        m async for m in jobs.WatchJob(jobs_pb2.WatchJobRequest(job_id=final.job_id, after_revision=final.revision))
    ]
    assert none == []


async def test_random_bytes_named_mp4_are_refused_as_no_video_and_leave_no_file(jobs, jobs_service):
    before = await jobs.ListJobs(jobs_pb2.ListJobsRequest(page_size=200))
    files = _left_files(jobs_service.settings)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await jobs.UploadJob(iter(_requests(random.Random(7).randbytes(300 * 1024), filename="clip.mp4")))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # FFmpeg finds no stream in them, or (random bytes can pass its h263 probe) one that does not decode.
    assert any(reason in err.value.details() for reason in ("not a video file", "video does not decode"))
    assert ("spoton-error-reason", "unsupported-media-type") in tuple(err.value.trailing_metadata())
    assert _left_files(jobs_service.settings) == files
    after = await jobs.ListJobs(jobs_pb2.ListJobsRequest(page_size=200))
    assert [j.job_id for j in after.jobs] == [j.job_id for j in before.jobs]
    assert not list(jobs_service.app.jobs.uploads_dir.glob("*"))


async def test_bad_metadata_is_refused_before_any_byte_is_kept(jobs, jobs_service):
    cases = [
        ({"filename": ""}, "filename is required"),
        ({"detection_threshold": 1.5}, "detection_threshold"),
        ({"fps": -1}, "fps"),
        ({"homography": catalog_pb2.Homography(matrix=[1, 0, 0])}, "homography"),
    ]
    for metadata, message in cases:
        metadata.setdefault("filename", "hall.mp4")
        requests = _requests(jobs_service.video.read_bytes(), **metadata)
        error = await asyncio.to_thread(_refusal, jobs_service.target, requests)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.details(), metadata
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await jobs.UploadJob(iter([jobs_pb2.UploadJobRequest(chunk=b"video first")]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "metadata" in err.value.details()
    assert not list(jobs_service.app.jobs.uploads_dir.glob("*"))


def _refusal(target: str, requests: Iterable[jobs_pb2.UploadJobRequest]) -> grpc.RpcError:
    """The error the server ends an upload with, through the sync client.

    grpcio's asyncio client may report INTERNAL "Internal error from Core" instead of the
    server's status when the server ends a client stream while a write is in flight
    (grpc/grpc#36066); the sync client, like other languages' clients, reports the status the
    server sent.
    """
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as err:
        jobs_pb2_grpc.JobServiceStub(channel).UploadJob(iter(requests), metadata=admin_metadata())
    return err.value


async def test_an_upload_over_the_limit_is_refused_while_it_streams(jobs, jobs_service):
    limit = jobs_service.settings.job_max_upload_bytes
    sent = 0

    def endless() -> Iterator[jobs_pb2.UploadJobRequest]:
        nonlocal sent
        yield jobs_pb2.UploadJobRequest(metadata=jobs_pb2.JobUploadMetadata(filename="big.mp4"))
        while sent < 64 * limit:
            sent += CHUNK
            yield jobs_pb2.UploadJobRequest(chunk=b"\0" * CHUNK)

    error = await asyncio.to_thread(_refusal, jobs_service.target, endless())
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(limit) in error.details() and "SPOTON_JOB_MAX_UPLOAD_BYTES" in error.details()
    assert sent < 64 * limit, "the server stopped the upload, not the end of the file"
    assert not list(jobs_service.app.jobs.uploads_dir.glob("*"))

    # A declared size over the limit is refused before any chunk.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await jobs.UploadJob(iter(_requests(b"", size_bytes=limit + 1)))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_client_that_goes_away_mid_upload_leaves_no_file(jobs, jobs_service):
    uploads = jobs_service.app.jobs.uploads_dir
    hold = asyncio.Event()

    async def stalled() -> AsyncIterator[jobs_pb2.UploadJobRequest]:
        for request in _requests(jobs_service.video.read_bytes()[: 3 * CHUNK]):
            yield request
        await hold.wait()

    call = jobs.UploadJob(stalled())
    await _until(lambda: list(uploads.glob("*.part")))
    call.cancel()
    await _until(lambda: not list(uploads.glob("*.part")))
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_cancel_stops_a_running_job_and_a_queued_one_and_cleans_up(jobs, jobs_service, channel):
    running = await _upload(jobs, jobs_service.video, name="to cancel while running")
    queued = await _upload(jobs, jobs_service.video, name="to cancel while queued")  # one job at a time
    running = await _wait(jobs, running.job_id, lambda j: j.state == jobs_pb2.JOB_STATE_RUNNING and j.task_id)
    assert (await jobs.GetJob(jobs_pb2.GetJobRequest(job_id=queued.job_id))).state == jobs_pb2.JOB_STATE_QUEUED

    cancelled = await jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=queued.job_id))
    assert cancelled.state == jobs_pb2.JOB_STATE_CANCELLED and not cancelled.task_id
    cancelled = await jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=running.job_id))
    assert cancelled.state == jobs_pb2.JOB_STATE_CANCELLED and not cancelled.results
    task = await tasks_pb2_grpc.TaskServiceStub(channel).GetTask(tasks_pb2.GetTaskRequest(task_id=running.task_id))
    assert task.state == tasks_pb2.TASK_STATE_CANCELLED
    media = jobs_service.settings.media_root
    assert not (media / "jobs" / running.job_id).exists() and not (media / "tasks" / running.task_id).exists()

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=running.job_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "cancelled" in err.value.details()


async def test_delete_is_refused_while_unfinished_and_removes_files_and_rows(jobs, jobs_service, channel):
    job = await _upload(jobs, jobs_service.video, name="to delete")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await jobs.DeleteJob(jobs_pb2.DeleteJobRequest(job_id=job.job_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "cancel it first" in err.value.details()
    job = await _wait(jobs, job.job_id, lambda j: j.state in FINAL)
    assert job.state == jobs_pb2.JOB_STATE_COMPLETED, job.error
    settings = jobs_service.settings
    places = [settings.jobs_dir / job.job_id, settings.media_root / "jobs" / job.job_id]
    places.append(settings.media_root / "tasks" / job.task_id)
    assert all(p.exists() for p in places)

    await jobs.DeleteJob(jobs_pb2.DeleteJobRequest(job_id=job.job_id))
    assert not any(p.exists() for p in places)
    for call in (jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job.job_id)),):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog_pb2_grpc.CatalogServiceStub(channel).GetEnvironment(
            catalog_pb2.GetEnvironmentRequest(environment_id=job.environment_id)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    conn = await asyncpg.connect(settings.postgres_dsn)
    try:
        task_id = uuid.UUID(job.task_id)
        counts = [
            await conn.fetchval(f"SELECT count(*) FROM {table} WHERE task_id = $1", task_id)
            for table in ("tasks", "task_state_history", "track_points", "identity_embeddings")
        ]
    finally:
        await conn.close()
    assert counts == [0, 0, 0, 0]
    assert await jobs_service.app.events.last_sequence(job.task_id) == 0


async def test_list_filters_by_state_and_pages_newest_first(jobs, completed):
    everything = (await jobs.ListJobs(jobs_pb2.ListJobsRequest(page_size=200))).jobs
    assert len(everything) >= 3
    created = [(j.created_at.seconds, j.created_at.nanos) for j in everything]
    assert created == sorted(created, reverse=True)
    done = (await jobs.ListJobs(jobs_pb2.ListJobsRequest(state=jobs_pb2.JOB_STATE_COMPLETED))).jobs
    assert done and {j.state for j in done} == {jobs_pb2.JOB_STATE_COMPLETED}
    assert completed.final.job_id in {j.job_id for j in done}
    assert {j.job_id for j in done} == {j.job_id for j in everything if j.state == jobs_pb2.JOB_STATE_COMPLETED}

    paged, token = [], ""
    while True:
        page = await jobs.ListJobs(jobs_pb2.ListJobsRequest(page_size=1, page_token=token))
        assert len(page.jobs) <= 1
        paged += [j.job_id for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert paged == [j.job_id for j in everything]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await jobs.ListJobs(jobs_pb2.ListJobsRequest(page_token="not-a-token"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_and_malformed_job_ids(jobs):
    for job_id, code in ((str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND), ("nope", grpc.StatusCode.INVALID_ARGUMENT)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job_id))
        assert err.value.code() == code


async def test_reflection_serves_job_service_and_its_methods(channel):
    from grpc_reflection.v1alpha import reflection_pb2

    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests = [
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="spoton.v1.JobService.UploadJob"),
        reflection_pb2.ServerReflectionRequest(list_services=""),
    ]
    replies = [r async for r in call(iter(requests))]
    assert replies[0].HasField("file_descriptor_response"), replies[0]
    assert "spoton.v1.JobService" in {s.name for s in replies[1].list_services_response.service}


async def _map_positions(settings, task_id: str) -> tuple[int, int]:
    """(track points, of them with map coordinates) of a task."""
    conn = await asyncpg.connect(settings.postgres_dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(map_x) AS mapped FROM track_points WHERE task_id = $1", uuid.UUID(task_id)
        )
    finally:
        await conn.close()
    return row["n"], row["mapped"]


async def test_map_positions_only_with_a_homography(jobs, jobs_service, completed, channel):
    points, mapped = await _map_positions(jobs_service.settings, completed.final.task_id)
    assert points > 0 and mapped == 0

    job = await _upload(jobs, jobs_service.video, homography=FLOOR, detection_threshold=0.5)
    assert job.has_homography and job.detection_threshold == pytest.approx(0.5)
    job = await _wait(jobs, job.job_id, lambda j: j.state in FINAL)
    assert job.state == jobs_pb2.JOB_STATE_COMPLETED, job.error
    env = await catalog_pb2_grpc.CatalogServiceStub(channel).GetEnvironment(
        catalog_pb2.GetEnvironmentRequest(environment_id=job.environment_id)
    )
    assert env.cameras[0].homography.reprojection_error_m == pytest.approx(0, abs=1e-6)
    points, mapped = await _map_positions(jobs_service.settings, job.task_id)
    assert points > 0 and mapped == points


async def test_zones_given_at_upload_put_closed_entries_and_exits_in_the_events_json(jobs, jobs_service, channel):
    # The left half of the floor, and the whole floor (a zone without an id gets one).
    left = _zone("left", (0, 0), (5, 0), (5, 10), (0, 10), name="Left half")
    whole = _zone("", (0, 0), (10, 0), (10, 10), (0, 10), name="Floor")
    job = await _upload(jobs, jobs_service.video, homography=FLOOR, zones=[left, whole])
    generated = job.zones[1].zone_id
    assert [(z.zone_id, z.name, len(z.polygon)) for z in job.zones] == [
        ("left", "Left half", 4),
        (generated, "Floor", 4),
    ]
    assert generated.startswith("zone-") and job.zones[1].environment_id == job.environment_id
    job = await _wait(jobs, job.job_id, lambda j: j.state in FINAL)
    assert job.state == jobs_pb2.JOB_STATE_COMPLETED, job.error
    assert [z.zone_id for z in job.zones] == ["left", generated]
    zones = await analytics_pb2_grpc.AnalyticsServiceStub(channel).ListZones(
        analytics_pb2.ListZonesRequest(environment_id=job.environment_id)
    )
    assert sorted(z.zone_id for z in zones.zones) == sorted(["left", generated])

    result = next(r for r in job.results if r.kind == jobs_pb2.JOB_RESULT_KIND_EVENTS)
    events = json.loads((jobs_service.settings.media_root / result.media_path).read_text())["events"]
    crossings = [e for e in events if e["type"] in ("zone_enter", "zone_exit")]
    assert {e["type"] for e in crossings} == {"zone_enter", "zone_exit"}
    assert {e["zone_id"] for e in crossings} == {"left", generated}
    assert all(e["frame"] >= 1 and e["time_s"] == pytest.approx((e["frame"] - 1) / 10) for e in crossings)
    # Per person and zone: enter, exit, enter, exit, ... in time order, every entry closed.
    stays: dict[tuple[int, str], list[str]] = {}
    for e in sorted(crossings, key=lambda e: e["frame"]):
        stays.setdefault((e["global_id"], e["zone_id"]), []).append(e["type"])
    for kinds in stays.values():
        assert kinds == ["zone_enter", "zone_exit"] * (len(kinds) // 2), kinds
    # Someone crossed the middle of the floor while the video ran, not only at its ends.
    last = max(e["frame"] for e in events)
    assert any(e["zone_id"] == "left" and 1 < e["frame"] < last for e in crossings), crossings


async def test_bad_zones_are_refused_and_leave_no_file(jobs, jobs_service):
    before = await jobs.ListJobs(jobs_pb2.ListJobsRequest(page_size=200))
    files = _left_files(jobs_service.settings)
    square = ((0, 0), (4, 0), (4, 4), (0, 4))
    cases = [
        ({"zones": [_zone("a", *square)]}, "zones need a homography: "),
        ({"homography": FLOOR, "zones": [_zone("a", (0, 0), (4, 0))]}, "zones[0]: a zone polygon needs at least 3"),
        ({"homography": FLOOR, "zones": [_zone("a", *square), _zone("a", *square)]}, "unique"),
        ({"homography": FLOOR, "zones": [_zone("no spaces", *square)]}, "zone id"),
    ]
    for metadata, message in cases:
        requests = _requests(jobs_service.video.read_bytes(), **metadata)
        error = await asyncio.to_thread(_refusal, jobs_service.target, requests)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, metadata
        assert message in error.details(), error.details()
    assert _left_files(jobs_service.settings) == files
    after = await jobs.ListJobs(jobs_pb2.ListJobsRequest(page_size=200))
    assert [j.job_id for j in after.jobs] == [j.job_id for j in before.jobs]
