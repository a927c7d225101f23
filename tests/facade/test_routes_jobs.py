"""``/api/v1/jobs`` over the real inference service: a multipart upload of a generated video,
progress over SSE, Range downloads of the annotated video (decoded with PyAV), the events
JSON and MOT tracks, zones given as a form field, refusals (415, 413, bad fields) that leave no
file, listing, cancel and delete."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import av
import httpx
import pytest
import pytest_asyncio

from spoton_facade.settings import FacadeSettings

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def live_settings(jobs_service) -> FacadeSettings:
    """The facade over the job tests' service (overrides the conftest's), with its upload limit."""
    return FacadeSettings(
        inference_target=jobs_service.target,
        media_root=jobs_service.settings.media_root,
        sse_heartbeat_seconds=0.2,
        job_max_upload_bytes=jobs_service.settings.job_max_upload_bytes,
    )


async def _post(client: httpx.AsyncClient, data: bytes, filename: str = "hall.mp4", **fields: str) -> httpx.Response:
    return await client.post("/api/v1/jobs", files={"file": (filename, data, "video/mp4")}, data=fields)


async def _sse(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every event of the stream until the server ends it: ``{"id", "event", "data"}``."""
    events, event = [], {}
    headers = {"Accept": "text/event-stream", **(headers or {})}
    async with client.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=180)) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(":")
                event[key] = value.removeprefix(" ")
                continue
            if event:
                events.append({**event, "data": json.loads(event["data"])})
            event = {}
    return events


async def _uploads_left(jobs_service) -> list[str]:
    uploads = jobs_service.app.jobs.uploads_dir  # the service's own uploads in progress
    return sorted(p.name for p in uploads.glob("*")) if uploads.exists() else []


@pytest_asyncio.fixture
async def completed(live_client, jobs_service) -> AsyncIterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """A job uploaded over REST and followed over SSE to its end: (the job, the SSE events)."""
    response = await _post(live_client, jobs_service.video.read_bytes(), name="Hall over REST", fps="10")
    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['job_id']}"
    events = await _sse(live_client, f"/api/v1/jobs/{job['job_id']}/events")
    yield events[-1]["data"], events


async def test_a_multipart_upload_is_followed_over_sse_to_completion(completed, live_client):
    job, events = completed
    assert job["state"] == "completed", job["error"]
    assert {e["event"] for e in events} == {"job_update"}
    revisions = [int(e["id"]) for e in events]
    assert revisions == sorted(set(revisions)) and revisions[-1] == job["revision"]
    running = [e["data"] for e in events if e["data"]["state"] == "running"]
    assert [j["progress"] for j in running] == sorted(j["progress"] for j in running)
    assert any(j["eta_seconds"] > 0 and j["frames_per_second"] > 0 for j in running), running
    # Each step's speed is kept once it is over: processing's is not replaced by rendering's.
    assert job["frames_per_second"] == pytest.approx(job["frames_processed"] / job["processing_seconds"], rel=0.02)
    assert job["rendering_frames_per_second"] > 0 and job["frames_rendered"] == job["total_frames"]
    assert [j["frames_processed"] for j in running] == sorted(j["frames_processed"] for j in running)
    assert job["eta_seconds"] == 0 and job["elapsed_seconds"] >= job["processing_seconds"]
    assert job["name"] == "Hall over REST" and job["filename"] == "hall.mp4" and job["fps_override"] == 10
    assert job["video"]["codec"] == "h264" and job["progress"] == 1 and job["frames_processed"] == 30

    got = (await live_client.get(f"/api/v1/jobs/{job['job_id']}")).json()
    assert got == job
    # Resuming after the last revision: nothing follows a finished job.
    resumed = await live_client.get(
        f"/api/v1/jobs/{job['job_id']}/events",
        headers={"Accept": "text/event-stream", "Last-Event-ID": str(job["revision"])},
    )
    assert resumed.status_code == 204


async def test_the_annotated_video_downloads_with_range_and_decodes_as_h264(completed, live_client):
    job, _ = completed
    url = f"/api/v1/jobs/{job['job_id']}/video"
    whole = await live_client.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    size = len(whole.content)
    first = await live_client.get(url, headers={"Range": "bytes=0-1023"})
    assert first.status_code == 206 and first.headers["content-range"] == f"bytes 0-1023/{size}"
    rest = await live_client.get(url, headers={"Range": "bytes=1024-"})
    assert rest.status_code == 206 and rest.headers["content-range"] == f"bytes 1024-{size - 1}/{size}"
    assert first.content + rest.content == whole.content
    unchanged = await live_client.get(url, headers={"If-None-Match": whole.headers["etag"]})
    assert unchanged.status_code == 304

    with av.open(io.BytesIO(first.content + rest.content)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 480)
        assert sum(1 for _ in container.decode(stream)) == 30


async def test_events_json_and_mot_tracks_download(completed, live_client):
    job, _ = completed
    events = await live_client.get(f"/api/v1/jobs/{job['job_id']}/events")
    assert events.status_code == 200 and events.headers["content-type"] == "application/json"
    kinds = {e["type"] for e in events.json()["events"]}
    assert {"appeared", "left"} <= kinds
    tracks = await live_client.get(f"/api/v1/jobs/{job['job_id']}/tracks")
    assert tracks.status_code == 200 and tracks.headers["content-type"].startswith("text/plain")
    rows = [line.split(",") for line in tracks.text.splitlines()]
    assert rows and all(len(r) == 10 and int(r[0]) >= 1 for r in rows)
    assert {int(r[1]) for r in rows} == {e["global_id"] for e in events.json()["events"]}
    partial = await live_client.get(f"/api/v1/jobs/{job['job_id']}/tracks", headers={"Range": "bytes=0-9"})
    assert partial.status_code == 206 and partial.content == tracks.content[:10]
    # The media route serves the same files, at the url the job gives.
    video = next(r for r in job["results"] if r["kind"] == "video")
    assert (await live_client.get(video["url"], headers={"Range": "bytes=0-99"})).status_code == 206


async def test_random_bytes_named_mp4_get_415_and_leave_no_file(live_client, jobs_service):
    response = await _post(live_client, random.Random(7).randbytes(200 * 1024), filename="clip.mp4")
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    # FFmpeg finds no stream in them, or (random bytes can pass its h263 probe) one that does not decode.
    assert any(reason in response.json()["detail"] for reason in ("not a video file", "video does not decode"))
    assert await _uploads_left(jobs_service) == []


async def test_not_multipart_is_415_and_a_missing_file_or_bad_field_is_400(live_client):
    assert (
        await live_client.post("/api/v1/jobs", content=b"raw", headers={"Content-Type": "video/mp4"})
    ).status_code == 415
    no_file = await live_client.post("/api/v1/jobs", files={"name": (None, "x")})
    assert no_file.status_code == 400 and "file" in no_file.json()["detail"]
    bad = await _post(live_client, b"x", fps="fast")
    assert bad.status_code == 400 and "fps" in bad.json()["detail"]
    unknown = await _post(live_client, b"x", colour="red")
    assert unknown.status_code == 400 and "colour" in unknown.json()["detail"]
    threshold = await _post(live_client, b"x" * 100, detection_threshold="2")
    assert threshold.status_code == 400 and "detection_threshold" in threshold.json()["detail"]


async def test_too_big_uploads_get_413_announced_or_streamed(live_client, jobs_service, admin_headers):
    limit = jobs_service.settings.job_max_upload_bytes
    announced = await _post(live_client, b"\0" * (limit + 2 * 1024 * 1024))
    assert announced.status_code == 413 and "SPOTON_JOB_MAX_UPLOAD_BYTES" in announced.json()["detail"]

    # No Content-Length, and the body never ends: the 413 can only come while it streams.
    host, port = live_client.base_url.host, live_client.base_url.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            b"POST /api/v1/jobs HTTP/1.1\r\nHost: facade\r\nTransfer-Encoding: chunked\r\n"
            b"Authorization: %s\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n" % admin_headers["Authorization"].encode()
        )
        head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        writer.write(b"%x\r\n%s\r\n" % (len(head), head))
        block = b"\0" * 64 * 1024
        for _ in range(limit // len(block) + 2):
            writer.write(b"%x\r\n%s\r\n" % (len(block), block))
        await writer.drain()
        async with asyncio.timeout(30):
            status = await reader.readline()
    finally:
        writer.close()
    assert status.split()[1] == b"413", status
    # The file streamed on to the service, which drops it once it sees the upload cancelled.
    async with asyncio.timeout(10):
        while await _uploads_left(jobs_service):  # noqa: ASYNC110 (files on disk: nothing to wait on)
            await asyncio.sleep(0.02)


async def test_list_cancel_and_delete(live_client, jobs_service, completed):
    job, _ = completed
    running = (await _post(live_client, jobs_service.video.read_bytes(), name="cancel me")).json()
    queued = (await _post(live_client, jobs_service.video.read_bytes(), name="cancel me too")).json()

    conflict = await live_client.delete(f"/api/v1/jobs/{running['job_id']}")
    assert conflict.status_code == 409 and "cancel it first" in conflict.json()["detail"]
    cancelled = await live_client.post(f"/api/v1/jobs/{queued['job_id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = await live_client.post(f"/api/v1/jobs/{queued['job_id']}/cancel")
    assert again.status_code == 409
    no_video = await live_client.get(f"/api/v1/jobs/{queued['job_id']}/video")
    assert no_video.status_code == 404 and "cancelled" in no_video.json()["detail"]
    async with asyncio.timeout(60):
        while True:
            current = (await live_client.get(f"/api/v1/jobs/{running['job_id']}")).json()
            if current["state"] == "running" and current["task_id"]:
                break
            assert current["state"] == "queued", current
            await asyncio.sleep(0.02)
    cancelled = await live_client.post(f"/api/v1/jobs/{running['job_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"

    page = (await live_client.get("/api/v1/jobs", params={"status": "cancelled", "page_size": 200})).json()
    assert {queued["job_id"], running["job_id"]} <= {j["job_id"] for j in page["jobs"]}
    assert {j["state"] for j in page["jobs"]} == {"cancelled"}
    first = (await live_client.get("/api/v1/jobs", params={"page_size": 1})).json()
    assert len(first["jobs"]) == 1 and first["next_page_token"]
    second = (
        await live_client.get("/api/v1/jobs", params={"page_size": 1, "page_token": first["next_page_token"]})
    ).json()
    assert second["jobs"][0]["job_id"] != first["jobs"][0]["job_id"]
    assert (await live_client.get("/api/v1/jobs", params={"status": "sleeping"})).status_code == 400

    deleted = await live_client.delete(f"/api/v1/jobs/{job['job_id']}")
    assert deleted.status_code == 204
    gone = await live_client.get(f"/api/v1/jobs/{job['job_id']}")
    assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json"
    assert (await live_client.get(f"/api/v1/jobs/{job['job_id']}/video")).status_code == 404


FLOOR = json.dumps(
    {"image_points": [[0, 480], [640, 480], [640, 200], [0, 200]], "map_points": [[0, 0], [10, 0], [10, 10], [0, 10]]}
)


async def test_zones_as_a_form_field_come_back_in_the_job_and_their_events_in_the_json(live_client, jobs_service):
    zones = json.dumps([{"zone_id": "left", "name": "Left half", "polygon": [[0, 0], [5, 0], [5, 10], [0, 10]]}])
    response = await _post(live_client, jobs_service.video.read_bytes(), homography=FLOOR, zones=zones)
    assert response.status_code == 201, response.text
    job = response.json()
    assert [(z["zone_id"], z["name"], z["polygon"]) for z in job["zones"]] == [
        ("left", "Left half", [[0, 0], [5, 0], [5, 10], [0, 10]])
    ]
    async with asyncio.timeout(120):
        while job["state"] not in ("completed", "failed", "cancelled"):
            await asyncio.sleep(0.05)
            job = (await live_client.get(f"/api/v1/jobs/{job['job_id']}")).json()
    assert job["state"] == "completed", job["error"]
    events = (await live_client.get(f"/api/v1/jobs/{job['job_id']}/events")).json()["events"]
    crossings = [e for e in events if e.get("zone_id") == "left"]
    assert {e["type"] for e in crossings} == {"zone_enter", "zone_exit"}
    assert all(e["frame"] >= 1 and e["time_s"] >= 0 for e in crossings)


async def test_bad_zones_get_a_problem_with_the_reason_and_leave_no_file(live_client, jobs_service):
    square = [[0, 0], [4, 0], [4, 4], [0, 4]]
    cases = [
        ({"zones": "not json"}, "zones is not valid"),
        ({"zones": json.dumps([{"polygon": [[0, 0], [1]]}])}, "zones is not valid"),
        ({"zones": json.dumps([{"polygon": square, "colour": "red"}])}, "colour"),
        ({"zones": json.dumps([{"polygon": square}])}, "zones need a homography"),
        ({"zones": json.dumps([{"polygon": square[:2]}]), "homography": FLOOR}, "length >= 3"),
    ]
    for fields, reason in cases:
        response = await _post(live_client, jobs_service.video.read_bytes(), **fields)
        assert response.status_code == 400, (fields, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert reason in response.json()["detail"], response.json()
    assert await _uploads_left(jobs_service) == []


async def test_a_large_upload_refused_for_its_options_gets_the_server_s_reason(live_client, jobs_service):
    """The service refuses at the first message while the facade still streams the file; the
    refusal must reach the user as the service's 400, never a 502 (grpc#36066)."""
    large = jobs_service.video.read_bytes() + bytes(3 * 1024 * 1024)  # the limit here is 4 MiB
    for _ in range(20):
        response = await _post(live_client, large, zones=json.dumps([{"polygon": [[0, 0], [4, 0], [4, 4]]}]))
        assert response.status_code == 400, response.text
        assert "zones need a homography" in response.json()["detail"]
    assert await _uploads_left(jobs_service) == []
