"""Camera operations over gRPC against a real RTSP camera: connection test, snapshot, health."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable

import cv2
import grpc
import numpy as np
import pytest

from spoton.v1 import catalog_pb2
from spoton_inference.app import camera_health_settings
from spoton_inference.domain.camera_health import HealthCheck
from spoton_inference.pipeline.source_probe import probe_source
from spoton_inference.services.camera_health import OFFLINE, ONLINE, CameraHealthMonitor
from spoton_inference.storage.camera_health_store import CameraHealthStore

pytestmark = pytest.mark.timeout(180)
PASSWORD = "pw-never-shown-42"


async def until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def _jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return image


async def test_connection_test_finds_codec_resolution_and_fps(catalog, register, rtsp_camera, attach_source):
    cam = await rtsp_camera(width=320, height=240, fps=10, user="admin", password=PASSWORD)
    await register("cam-test")
    await attach_source("cam-test", "c1", cam.url, "admin", PASSWORD)
    got = await catalog.TestCameraConnection(
        catalog_pb2.TestCameraConnectionRequest(environment_id="cam-test", camera_id="c1")
    )
    assert got.ok and not got.reason
    assert (got.codec, got.width, got.height, got.fps) == ("h264", 320, 240, 10)
    assert got.time_to_first_frame_ms > 0
    assert got.source_url == cam.url.replace("//", "//admin:****@")  # the password is never shown


async def test_connection_failures_are_results_with_masked_reasons(
    live_service, catalog, rtsp_camera, caplog, rpc_error
):
    caplog.set_level(logging.DEBUG)
    cam = await rtsp_camera(user="admin", password="the-right-one")
    wrong = await catalog.TestCameraConnection(
        catalog_pb2.TestCameraConnectionRequest(source_url=cam.url, username="admin", password=PASSWORD)
    )
    assert not wrong.ok and wrong.error_kind == "auth" and "user name and password" in wrong.reason
    inline = cam.url.replace("rtsp://", f"rtsp://admin:{PASSWORD}@")
    wrong = await catalog.TestCameraConnection(catalog_pb2.TestCameraConnectionRequest(source_url=inline))
    assert not wrong.ok and wrong.error_kind == "auth" and wrong.source_url == cam.url.replace("//", "//admin:****@")
    await cam.stop()
    refused = await catalog.TestCameraConnection(catalog_pb2.TestCameraConnectionRequest(source_url=inline))
    assert not refused.ok and refused.error_kind == "refused"
    assert PASSWORD not in f"{wrong} {refused} {caplog.text}"

    code, details = await rpc_error(
        catalog.TestCameraConnection(catalog_pb2.TestCameraConnectionRequest(source_url=f"ftp://u:{PASSWORD}@x/y"))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and PASSWORD not in details and "rtsp://" in details
    code, _ = await rpc_error(catalog.TestCameraConnection(catalog_pb2.TestCameraConnectionRequest()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_camera_without_live_source_cannot_be_tested(catalog, register, rpc_error):
    await register("cam-files")
    code, details = await rpc_error(
        catalog.TestCameraConnection(
            catalog_pb2.TestCameraConnectionRequest(environment_id="cam-files", camera_id="c1")
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "RTSP or HTTP" in details


async def test_snapshot_of_a_live_camera_and_of_a_file_camera(catalog, register, rtsp_camera, rpc_error, attach_source):
    cam = await rtsp_camera(width=320, height=240)
    await register("cam-snap")
    await attach_source("cam-snap", "c1", cam.url)
    for draw in (False, True):
        snap = await catalog.GetCameraSnapshot(
            catalog_pb2.GetCameraSnapshotRequest(environment_id="cam-snap", camera_id="c1", draw_detections=draw)
        )
        assert _jpeg(snap.jpeg).shape == (240, 320, 3) and (snap.width, snap.height) == (320, 240)
        assert abs(snap.captured_at.ToDatetime(dt.UTC) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    # A file camera shows its first sub-video's first frame.
    snap = await catalog.GetCameraSnapshot(
        catalog_pb2.GetCameraSnapshotRequest(environment_id="cam-snap", camera_id="c2")
    )
    assert _jpeg(snap.jpeg).shape == (120, 160, 3)
    # A live camera that is down says so.
    await cam.stop()
    code, details = await rpc_error(
        catalog.GetCameraSnapshot(catalog_pb2.GetCameraSnapshotRequest(environment_id="cam-snap", camera_id="c1"))
    )
    assert code == grpc.StatusCode.UNAVAILABLE and "refused" in details


async def test_snapshot_draws_the_detected_people(catalog, job_video, tmp_path):
    (tmp_path / "cameras" / "hall").mkdir(parents=True)
    # Copied: a symlink leading out of the environment directory is refused.
    shutil.copyfile(job_video, tmp_path / "cameras" / "hall" / "sub_video_01.mp4")
    (tmp_path / "environment.json").write_text(json.dumps({"id": "cam-people", "cameras": [{"id": "hall"}]}))
    await catalog.RegisterEnvironmentFromDirectory(
        catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=str(tmp_path))
    )
    request = catalog_pb2.GetCameraSnapshotRequest(environment_id="cam-people", camera_id="hall")
    plain = await catalog.GetCameraSnapshot(request)
    request.draw_detections = True
    drawn = await catalog.GetCameraSnapshot(request)
    assert plain.detections == 0 and drawn.detections >= 1
    assert _jpeg(drawn.jpeg).shape == _jpeg(plain.jpeg).shape == (480, 640, 3)
    assert np.abs(_jpeg(drawn.jpeg).astype(int) - _jpeg(plain.jpeg)).max() > 100  # boxes are drawn


async def test_health_loop_stores_checks_and_flips_online_to_offline(
    live_service, catalog, register, rtsp_camera, attach_source
):
    app = live_service.app
    cam = await rtsp_camera(fps=10)
    await register("cam-health")
    await attach_source("cam-health", "c1", cam.url)
    settings = dataclasses.replace(live_service.settings, camera_health_interval_s=0.2, source_connect_timeout_s=3)
    monitor = CameraHealthMonitor(
        camera_health_settings(settings), CameraHealthStore(app.db), app.catalog, probe_source
    )
    request = catalog_pb2.ListCameraHealthRequest(environment_id="cam-health", camera_id="c1", limit=100)

    async def status_is(status: str) -> bool:
        return (await catalog.ListCameraHealth(request)).status == status

    monitor.start()
    try:
        await until(lambda: status_is(ONLINE))
        await cam.stop()
        await until(lambda: status_is(OFFLINE))
    finally:
        await monitor.close()
    got = await catalog.ListCameraHealth(request)
    times = [c.checked_at.ToDatetime() for c in got.checks]
    assert times == sorted(times, reverse=True)  # newest first
    online = next(c for c in got.checks if c.status == ONLINE)
    assert (online.width, online.height) == (320, 240) and online.fps > 5 and online.latency_ms > 0
    assert got.checks[0].status == OFFLINE and "refused" in got.checks[0].error and got.checks[0].latency_ms == 0
    request.limit = 1
    assert list((await catalog.ListCameraHealth(request)).checks) == [got.checks[0]]


async def test_health_history_is_pruned_after_the_retention(live_service):
    app = live_service.app
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    store = CameraHealthStore(app.db)
    await store.insert(HealthCheck("cam-prune", "c1", old, OFFLINE, None, 0, 0, 0, "x"))
    monitor = CameraHealthMonitor(
        camera_health_settings(dataclasses.replace(live_service.settings, camera_health_retention_days=7)),
        store,
        app.catalog,
        probe_source,
    )
    fresh = HealthCheck("cam-prune", "c1", dt.datetime.now(dt.UTC), ONLINE, 5.0, 10, 320, 240, "")
    await store.insert(fresh)
    assert await monitor.prune() >= 1
    assert await store.history("cam-prune", "c1", 10) == [fresh]  # only the old row went


async def test_health_of_unknown_camera_is_not_found(catalog, register, rpc_error):
    await register("cam-unknown")
    request = catalog_pb2.ListCameraHealthRequest(environment_id="cam-unknown", camera_id="nope")
    code, details = await rpc_error(catalog.ListCameraHealth(request))
    assert code == grpc.StatusCode.NOT_FOUND and "'nope'" in details
