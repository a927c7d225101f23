"""Camera operation routes over the real inference service and a real RTSP camera."""

from __future__ import annotations

import cv2
import httpx
import numpy as np

BASE = "/api/v1/environments"
PASSWORD = "rest-secret-77"


async def test_connection_snapshot_and_health(
    live_service, live_client: httpx.AsyncClient, registered, rtsp_camera, attach_source
):
    cam = await rtsp_camera(width=320, height=240, fps=10, user="admin", password=PASSWORD)
    env = await registered("rest-cams")
    await attach_source(env, "c1", cam.url, "admin", PASSWORD)
    camera = f"{BASE}/{env}/cameras/c1"

    tested = await live_client.post(f"{camera}/test-connection")
    assert tested.status_code == 200, tested.text
    body = tested.json()
    assert body["ok"] and (body["codec"], body["width"], body["height"], body["fps"]) == ("h264", 320, 240, 10)
    assert PASSWORD not in tested.text and "admin:****@" in body["source_url"]

    for query in ("", "?detections=true"):
        snap = await live_client.get(f"{camera}/snapshot{query}")
        assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(snap.content, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (240, 320, 3)

    await live_service.app.camera_health.check_all()
    health = await live_client.get(f"{camera}/health", params={"limit": 5})
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "online" and health.json()["checks"][0]["width"] == 320

    await cam.stop()
    down = (await live_client.post(f"{camera}/test-connection")).json()
    assert not down["ok"] and down["error_kind"] == "refused" and down["reason"]

    # A camera with no live source: 409 problem; an unknown one: 404.
    files = await live_client.post(f"{BASE}/{env}/cameras/c2/test-connection")
    assert files.status_code == 409 and files.headers["content-type"] == "application/problem+json"
    assert (await live_client.get(f"{BASE}/{env}/cameras/nope/health")).status_code == 404
    assert (await live_client.get(f"{BASE}/{env}/cameras/c2/health")).json() == {"status": "unknown", "checks": []}


async def test_openapi_lists_the_camera_operations(live_client: httpx.AsyncClient):
    paths = (await live_client.get("/schema/openapi.json")).json()["paths"]
    camera = "/api/v1/environments/{environment_id}/cameras/{camera_id}"
    assert "post" in paths[f"{camera}/test-connection"]
    assert "image/jpeg" in paths[f"{camera}/snapshot"]["get"]["responses"]["200"]["content"]
    assert "get" in paths[f"{camera}/health"]
