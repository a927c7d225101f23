"""Live pulls against a real local RTSP server (and an MJPEG-over-HTTP one): frames, reconnects,
drops, masked failures."""

from __future__ import annotations

import asyncio
import http.server
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest

from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.pipeline.av_source import AUTH, REFUSED, TIMEOUT, SourceError, open_source
from spoton_inference.pipeline.live import RawPixels
from spoton_inference.pipeline.live_pull import LivePull, LivePulls, PullOptions, backoff_s, pull_frames
from spoton_inference.pipeline.source_probe import probe_source

pytestmark = pytest.mark.timeout(120)
FAST = PullOptions(timeout_s=5.0, reconnect_initial_s=0.2, reconnect_max_s=1.0)


async def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_pull_yields_bgr_frames_of_the_stream(rtsp_camera):
    cam = await rtsp_camera(width=320, height=240, fps=10)
    pull = LivePull("c1", CameraSource.from_url(cam.url), FAST)
    frames = pull_frames([pull])
    got = [await anext(frames) for _ in range(5)]
    await frames.aclose()
    assert {f.camera_id for f in got} == {"c1"}
    assert all(isinstance(f.image, RawPixels) and (f.image.width, f.image.height) == (320, 240) for f in got)
    assert [f.timestamp for f in got] == sorted(f.timestamp for f in got)  # type: ignore[type-var]
    assert pull.state.codec == "h264" and pull.state.fps == 10 and pull.state.frames >= 5
    assert pull.latest is not None and pull.latest.shape == (240, 320, 3)
    assert not pull.running  # closing the iterator stopped the thread


class _MjpegCamera(http.server.BaseHTTPRequestHandler):
    """What many IP cameras serve: JPEG frames as parts of one multipart/x-mixed-replace response."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for i in range(10_000):
                image = np.full((240, 320, 3), (i * 8) % 256, np.uint8)
                cv2.circle(image, (40 + (i * 5) % 240, 120), 20, (0, 0, 255), -1)
                jpeg = cv2.imencode(".jpg", image)[1].tobytes()
                head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                self.wfile.write(head + jpeg + b"\r\n")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):  # the client went away
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mjpeg_url() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _MjpegCamera)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
    server.shutdown()
    server.server_close()


async def test_an_mjpeg_http_camera_is_pulled_and_probed(mjpeg_url):
    source = CameraSource.from_url(mjpeg_url)
    assert source.kind == "http"
    pull = LivePull("c1", source, FAST)
    frames = pull_frames([pull])
    got = [await anext(frames) for _ in range(3)]
    await frames.aclose()
    assert all(isinstance(f.image, RawPixels) and (f.image.width, f.image.height) == (320, 240) for f in got)
    probe = await asyncio.to_thread(probe_source, source, 5.0)
    assert probe.ok and (probe.codec, probe.width, probe.height) == ("mjpeg", 320, 240)


async def test_pull_reconnects_after_the_server_restarts(rtsp_camera):
    cam = await rtsp_camera()
    pull = LivePull("c1", CameraSource.from_url(cam.url), FAST)
    frames = pull_frames([pull])
    try:
        await anext(frames)
        await cam.stop()
        await until(lambda: not pull.state.connected and pull.state.failed_attempts >= 1)
        before = pull.state.frames
        await cam.start()
        # The same iterator goes on: frames decoded after the restart arrive through it.
        while (await asyncio.wait_for(anext(frames), 30)).frame_id < before:
            pass
        assert pull.state.reconnects >= 1 and pull.state.connected
        assert pull.state.last_error  # why it dropped, kept for health
    finally:
        await frames.aclose()


async def test_slow_consumer_drops_the_oldest_frames(rtsp_camera):
    cam = await rtsp_camera(fps=25)
    pull = LivePull("c1", CameraSource.from_url(cam.url), FAST)
    frames = pull_frames([pull])
    try:
        await anext(frames)
        await until(lambda: pull.state.frames_dropped >= 5)  # nobody reads: the buffer stays at 2
        newest = await anext(frames)
        assert pull.state.frames - newest.frame_id <= 3  # what is read is fresh, not a backlog
    finally:
        await frames.aclose()


async def test_wrong_password_is_an_auth_failure_with_the_password_masked(rtsp_camera, caplog):
    cam = await rtsp_camera(user="admin", password="right-one")
    source = CameraSource.from_url(cam.url, "admin", "wrong-pw-123")
    with pytest.raises(SourceError) as err:
        await asyncio.to_thread(open_source, source, 5.0)
    assert err.value.kind == AUTH and "user name and password" in err.value.reason
    # A pull logs the same reason while it retries; the password never reaches a log line.
    caplog.set_level(logging.DEBUG)
    pull = LivePull("c1", source, FAST)
    frames = pull_frames([pull])
    waiting = asyncio.ensure_future(anext(frames))  # starts the pull; no frame will come
    try:
        await until(lambda: pull.state.failed_attempts >= 2)
    finally:
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await frames.aclose()
    assert not pull.running
    assert pull.state.last_error_kind == AUTH
    assert "wrong-pw-123" not in caplog.text and "wrong-pw-123" not in pull.state.last_error
    assert "authentication failed" in caplog.text
    # With the right password it streams.
    container, _ = await asyncio.to_thread(open_source, CameraSource.from_url(cam.url, "admin", "right-one"), 5)
    container.close()


async def test_refused_and_silent_servers_fail_within_the_timeout():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(SourceError) as err:
        await asyncio.to_thread(open_source, CameraSource.from_url(f"rtsp://u:pw@127.0.0.1:{port}/x"), 2.0)
    assert err.value.kind == REFUSED and "pw" not in err.value.reason
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x"
        with pytest.raises(SourceError) as err:
            await asyncio.to_thread(open_source, CameraSource.from_url(url), 1.0)
    assert err.value.kind == TIMEOUT and "within 1 s" in err.value.reason


def test_backoff_doubles_up_to_the_cap_with_jitter():
    options = PullOptions(reconnect_initial_s=0.5, reconnect_max_s=8.0)
    assert [backoff_s(a, options, rand=lambda: 1.0) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff_s(3, options, rand=lambda: 0.0) == 2.0  # jitter takes off at most half
    delays = {backoff_s(2, options) for _ in range(20)}
    assert len(delays) > 1 and all(1.0 <= d <= 2.0 for d in delays)
    assert np.isfinite(backoff_s(10_000, options))


def test_live_pulls_lists_a_registered_pull_until_it_is_removed():
    pulls = LivePulls()
    pull = LivePull("c1", CameraSource.from_url("rtsp://camera.invalid/stream"))
    pulls.register(("env", "c1"), pull)
    assert pulls.get(("env", "c1")) is pull and dict(pulls) == {("env", "c1"): pull}
    pulls.remove(("env", "c1"))
    pulls.remove(("env", "c1"))  # already gone: nothing to do
    assert pulls == {} and pulls.get(("env", "c1")) is None
