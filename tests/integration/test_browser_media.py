"""Media every browser plays, through the real stack: an uploaded DivX AVI (OpenCV's
``vtest.avi``, ``make samples``) and a registered environment's MJPEG sub-video are served by
the facade as H.264 MP4 (moov first), ``Content-Type: video/mp4``, with Range, and with every
frame at its original time, so the tracks drawn over them stay in sync.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import pytest_asyncio
from support.auth import admin_headers
from support.services import serving
from support.videos import VTEST, VTEST_FRAMES, frame_times, write_video

from spoton_facade.settings import FacadeSettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not VTEST.exists(), reason="vtest.avi is missing: run `make samples`"),
]

UPLOAD_LIMIT_BYTES = 32 * 1024 * 1024


@pytest_asyncio.fixture(scope="module")
async def media_service(service_settings) -> AsyncIterator[Any]:
    """An inference service of its own (uploads up to 32 MiB: vtest.avi is 8 MB)."""
    settings = await service_settings("spoton_browser_media", job_max_upload_bytes=UPLOAD_LIMIT_BYTES)
    async with serving(settings) as app:
        yield app


@pytest_asyncio.fixture(scope="module")
async def http(media_service, serve_facade) -> AsyncIterator[httpx.AsyncClient]:
    settings = media_service.settings
    facade = FacadeSettings(
        inference_target=f"{settings.grpc_host}:{settings.grpc_port}",
        media_root=settings.media_root,
        sse_heartbeat_seconds=0.2,
        job_max_upload_bytes=UPLOAD_LIMIT_BYTES,
    )
    async with (
        serve_facade(facade) as url,
        httpx.AsyncClient(base_url=url, headers=admin_headers(), timeout=httpx.Timeout(60, read=300)) as client,
    ):
        yield client


async def _sse_until(client: httpx.AsyncClient, url: str, wanted: Any) -> dict[str, Any]:
    """The first event of the stream at ``url`` for which ``wanted(event)`` holds."""
    event: dict[str, str] = {}
    async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(":")
                event[key] = value.removeprefix(" ")
                continue
            if event:
                parsed = {**event, "data": json.loads(event["data"])}
                if wanted(parsed):
                    return parsed
            event = {}
    raise AssertionError(f"{url} ended without the event looked for")


async def _announced_video(client: httpx.AsyncClient, task_id: str) -> str:
    """The media URL the task's first ``media_available`` event announces."""
    event = await _sse_until(
        client, f"/api/v1/processing-tasks/{task_id}/events", lambda e: e["event"] == "media_available"
    )
    (media,) = event["data"]["media_urls"]
    return media["url"]


def _top_level_boxes(data: bytes) -> list[bytes]:
    boxes, position = [], 0
    while position + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[position + 8 : position + 16])
        boxes.append(kind)
        if size < 8:
            break
        position += size
    return boxes


async def _fetch_browser_video(client: httpx.AsyncClient, url: str) -> tuple[bytes, list[Fraction]]:
    """Fetch ``url`` as a browser's media element does (ranges), check it is H.264 MP4 with
    the index first, served as video/mp4; returns the bytes and each frame's time."""
    head = await client.get(url, headers={"Range": "bytes=0-65535"})
    assert head.status_code == 206, head.text
    assert head.headers["content-type"] == "video/mp4"
    assert head.headers["accept-ranges"] == "bytes"
    size = int(head.headers["content-range"].rpartition("/")[2])
    data = head.content
    if len(data) < size:
        rest = await client.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert rest.status_code == 206 and rest.headers["content-type"] == "video/mp4"
        data += rest.content
    assert len(data) == size
    boxes = _top_level_boxes(data)
    assert boxes[0] == b"ftyp" and boxes.index(b"moov") < boxes.index(b"mdat")  # faststart
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        times = [frame.pts * frame.time_base for frame in container.decode(stream)]
    return data, times


async def test_an_uploaded_divx_avi_is_served_as_h264_mp4_frame_for_frame(http):
    response = await http.post(
        "/api/v1/jobs",
        files={"file": ("vtest.avi", VTEST.read_bytes(), "video/x-msvideo")},
        data={"name": "vtest"},
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["video"]["codec"] == "msmpeg4"  # what was uploaded: a DivX 3 (MS MPEG-4) AVI
    try:
        # The job says it is preparing while its upload is made playable, then processes it.
        steps: list[str] = []

        def processing(event: dict[str, Any]) -> bool:
            steps.append(event["data"]["step"])
            return bool(event["data"].get("task_id")) or event["data"]["state"] in {"failed", "cancelled"}

        running = (await _sse_until(http, f"/api/v1/jobs/{job['job_id']}/events", processing))["data"]
        assert running["state"] == "running", running
        assert "preparing" in steps and running["total_frames"] == VTEST_FRAMES
        url = await _announced_video(http, running["task_id"])
        _, times = await _fetch_browser_video(http, url)
        assert len(times) == VTEST_FRAMES
        assert times == frame_times(VTEST)  # same frames at the same times: tracks stay in sync
        assert (await http.get(url, headers={"Range": "bytes=0-0"})).status_code == 206
    finally:
        await http.post(f"/api/v1/jobs/{job['job_id']}/cancel")


async def test_a_registered_mjpeg_sub_video_is_served_as_h264(http, media_service, make_data_dir):
    site = make_data_dir("mjpeg-site")
    video = write_video(
        site / "cameras" / "c1" / "sub_video_01.mp4", "mjpeg", frames=40, fps=10, size=(320, 240), container="mp4"
    )
    original = video.read_bytes()
    doc = {"id": "mjpeg-site", "name": "MJPEG site", "cameras": [{"id": "c1", "name": "Door", "fps": 10}]}
    (site / "environment.json").write_text(json.dumps(doc))
    await media_service.catalog.register_directory(str(site))

    started = await http.post("/api/v1/processing-tasks/start", json={"environment_id": "mjpeg-site"})
    assert started.status_code == 202, started.text
    task_id = started.json()["task_id"]
    try:
        url = await _announced_video(http, task_id)
        _, times = await _fetch_browser_video(http, url)
        assert times == frame_times(video) and len(times) == 40
    finally:
        await http.post(f"/api/v1/processing-tasks/{task_id}/control", json={"action": "cancel"})
    assert video.read_bytes() == original  # the site's own file is never changed
    assert Path(media_service.settings.data_dir, "media-cache").is_dir()
