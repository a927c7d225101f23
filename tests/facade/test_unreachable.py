"""With no inference service listening, health says "starting" and routes answer 503 problems.

This exercises the real client wrapper, channel and status mapping without a fake service.
"""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]
# Task ids are UUIDs: anything else is refused before any call.
TASK = "/api/v1/processing-tasks/0b9c6f5e-6d0e-4d8e-9a51-2f1d8c3b7a10"


async def test_health_is_starting(client: Client) -> None:
    response = await client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "starting"
    assert body["facade"] == "ok"
    [component] = body["components"]
    assert component["name"] == "inference"
    assert component["status"] == "starting"
    assert "UNAVAILABLE" in component["detail"]


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("GET", "/api/v1/environments", {}),
        ("GET", "/api/v1/environments/e1", {}),
        ("GET", "/api/v1/environments/e1/cameras", {}),
        ("GET", "/api/v1/processing-tasks", {"params": {"state": "processing", "page_size": 5}}),
        ("GET", f"{TASK}/status", {}),
        ("GET", f"{TASK}/exports", {}),
        ("GET", f"{TASK}/events", {"headers": {"Last-Event-ID": "7"}}),
        ("POST", "/api/v1/processing-tasks/start", {"json": {"environment_id": "e1", "camera_ids": ["c1"]}}),
        ("POST", f"{TASK}/control", {"json": {"action": "focus", "global_id": 3}}),
        ("POST", "/api/v1/environments", {"json": {"environment_id": "e1"}}),
        ("POST", "/api/v1/environments/:register", {"json": {"path": "/srv/site"}}),
        ("PATCH", "/api/v1/environments/e1", {"json": {"name": "E"}}),
        ("DELETE", "/api/v1/environments/e1", {}),
        ("POST", "/api/v1/environments/e1/cameras", {"json": {"camera_id": "c1", "fps": 10}}),
        ("GET", "/api/v1/environments/e1/cameras/c1", {}),
        ("PATCH", "/api/v1/environments/e1/cameras/c1", {"json": {"clear_homography": True}}),
        ("DELETE", "/api/v1/environments/e1/cameras/c1", {}),
    ],
)
async def test_routes_report_unavailable(client: Client, method: str, url: str, kwargs: dict[str, object]) -> None:
    response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["grpc_status"] == "UNAVAILABLE"
    assert body["instance"] == url


async def test_dashboard_is_served(client: Client) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/dashboard.js">' in page.text
    script = await client.get("/static/dashboard.js")
    assert script.status_code == 200
    assert "EventSource" in script.text
