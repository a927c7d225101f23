"""Per-camera metrics read a real live pull (a local RTSP camera) at scrape time: connected,
frames, reconnects after the camera went away, and the newest frame's time."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.embedded.ports import LOOPBACK, pick_free_port
from spoton_inference.metrics import start_metrics_server
from spoton_inference.pipeline.live import LiveStats
from spoton_inference.pipeline.live_pull import LivePull, PullOptions, pull_frames
from spoton_inference.storage.journal import Journal
from spoton_inference.storage.track_writer import TrackPointWriter

pytestmark = pytest.mark.timeout(120)
FAST = PullOptions(timeout_s=5.0, reconnect_initial_s=0.2, reconnect_max_s=1.0)
LABELS = {"environment_id": "hall", "camera_id": "c1"}


async def _never_called(batch_id, rows):
    raise AssertionError("the writer is not started here")


def _camera_samples(text: str) -> dict[str, float]:
    return {
        s.name: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.startswith("spoton_camera_") and s.labels == LABELS
    }


async def test_a_live_pull_is_scraped_per_camera(rtsp_camera, tmp_path) -> None:
    cam = await rtsp_camera(fps=10)
    pull = LivePull("c1", CameraSource.from_url(cam.url), FAST)
    writer = TrackPointWriter(_never_called, Journal(tmp_path / "j.journal", 1 << 20), batch_size=10)
    port = pick_free_port()
    pulls: dict[tuple[str, str], LivePull] = {}
    server = start_metrics_server(LOOPBACK, port, writer, LiveStats(), cameras=lambda: pulls)
    frames = pull_frames([pull])
    try:
        async with httpx.AsyncClient() as http:
            empty = (await http.get(f"http://{LOOPBACK}:{port}/metrics")).text
            pulls[("hall", "c1")] = pull
            for _ in range(5):
                await anext(frames)
            first = _camera_samples((await http.get(f"http://{LOOPBACK}:{port}/metrics")).text)

            await cam.stop()  # the camera goes away and comes back on the same port
            await cam.start()
            async with asyncio.timeout(30):
                while pull.state.reconnects < 1:
                    await anext(frames)
            again = _camera_samples((await http.get(f"http://{LOOPBACK}:{port}/metrics")).text)
    finally:
        await frames.aclose()
        server.shutdown()
        server.server_close()

    assert "# TYPE spoton_camera_frames_total counter" in empty and not _camera_samples(empty)
    assert first["spoton_camera_connected"] == 1 and first["spoton_camera_frames_total"] >= 5
    assert first["spoton_camera_reconnects_total"] == 0
    assert abs(first["spoton_camera_last_frame_timestamp_seconds"] - time.time()) < 30
    assert again["spoton_camera_reconnects_total"] == 1 and again["spoton_camera_connection_failures_total"] >= 1
    assert again["spoton_camera_frames_total"] > first["spoton_camera_frames_total"]
