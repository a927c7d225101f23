"""Analytics and zone routes over the real inference service: each a gRPC call, answered as JSON (or a
PNG for the heatmap), with gRPC errors as problem+json."""

from __future__ import annotations

import datetime as dt
import uuid

import cv2
import httpx
import numpy as np
import pytest

from spoton_inference.storage.task_store import TaskStore

Client = httpx.AsyncClient
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
ROOM = [[0, 0], [2, 0], [2, 2], [0, 2]]


@pytest.fixture
async def walked(live_service, registered) -> tuple[str, str]:
    """A fresh environment and a task whose person 2 walks along y = 1 from x = 0 to 3.9 m at 10 fps."""
    env_id = await registered(f"rest-analytics-{uuid.uuid4().hex[:6]}")
    db = live_service.app.db
    task = (await TaskStore(db).insert_task(env_id, ["c1"], 40)).task_id
    rows = [
        (T0 + dt.timedelta(seconds=f / 10), uuid.UUID(task), env_id, "c1", f, 1, 2, 0, 0, 1, 1, 0.5, f * 0.1, 1.0)
        for f in range(40)
    ]
    await TaskStore(db).copy_track_points(rows)
    return env_id, task


async def test_zone_routes_round_trip(live_client: Client, walked, expect_problem) -> None:
    env_id, _ = walked
    base = f"/api/v1/environments/{env_id}/zones"
    created = await live_client.post(base, json={"zone_id": "room", "name": "Room", "polygon": ROOM})
    assert created.status_code == 201, created.text
    zone = created.json()
    assert (zone["zone_id"], zone["name"], zone["polygon"]) == ("room", "Room", ROOM)
    assert (await live_client.get(f"{base}/room")).json() == zone
    patched = await live_client.patch(f"{base}/room", json={"polygon": [[0, 0], [3, 0], [3, 3]]})
    assert patched.status_code == 200 and patched.json()["name"] == "Room" and len(patched.json()["polygon"]) == 3
    assert [z["zone_id"] for z in (await live_client.get(base)).json()["zones"]] == ["room"]

    expect_problem(await live_client.post(base, json={"zone_id": "room", "polygon": ROOM}), 409, "ALREADY_EXISTS")
    body = expect_problem(
        await live_client.post(base, json={"polygon": [[0, 0], [2, 2], [2, 0], [0, 2]]}), 400, "INVALID_ARGUMENT"
    )
    assert "self-intersecting" in body["detail"]
    body = expect_problem(await live_client.post(base, json={"polygon": [[0, 0], [1, 1]]}), 400)  # the facade's
    assert body["errors"][0]["key"] == "polygon" and "length >= 3" in body["errors"][0]["message"]
    expect_problem(await live_client.post(base, json={"polygon": ROOM, "shape": "square"}), 400)  # unknown field
    expect_problem(await live_client.get("/api/v1/environments/nowhere/zones"), 404, "NOT_FOUND")

    assert (await live_client.delete(f"{base}/room")).status_code == 204
    expect_problem(await live_client.get(f"{base}/room"), 404, "NOT_FOUND")


async def test_trajectory_counts_and_dwell(live_client: Client, walked) -> None:
    env_id, task = walked
    await live_client.post(f"/api/v1/environments/{env_id}/zones", json={"zone_id": "west", "polygon": ROOM})

    trajectory = await live_client.get(
        "/api/v1/analytics/trajectory/2", params={"task_id": task, "simplify_tolerance_m": 0.05}
    )
    assert trajectory.status_code == 200, trajectory.text
    body = trajectory.json()
    assert [p["global_frame_index"] for p in body["points"]] == [0, 39]
    assert body["points"][-1]["map_coords"] == [pytest.approx(3.9), 1.0] and body["raw_point_count"] == 40
    assert [(s["camera_id"], s["start_global_frame_index"], s["end_global_frame_index"]) for s in body["segments"]] == [
        ("c1", 0, 39)
    ]
    late = await live_client.get(
        "/api/v1/analytics/trajectory/2",
        params={"environment_id": env_id, "start_time": (T0 + dt.timedelta(seconds=3)).isoformat()},
    )
    assert [p["global_frame_index"] for p in late.json()["points"]] == list(range(30, 40))

    counts = await live_client.get(
        "/api/v1/analytics/counts",
        params={"environment_id": env_id, "bucket_seconds": 3600, "start_time": T0.isoformat()},
    )
    assert counts.status_code == 200, counts.text
    assert [(c["camera_id"], c["people"]) for c in counts.json()["cameras"]] == [("c1", 1)]
    assert [(c["zone_id"], c["people"]) for c in counts.json()["zones"]] == [("west", 1)]
    assert dt.datetime.fromisoformat(counts.json()["cameras"][0]["bucket_start"]) == T0

    dwell = await live_client.get("/api/v1/analytics/dwell", params={"environment_id": env_id, "zone_ids": "west"})
    [entry] = dwell.json()["entries"]
    assert (entry["zone_id"], entry["global_id"], entry["task_id"]) == ("west", 2, task)
    assert entry["dwell_seconds"] == pytest.approx(2.0)


async def test_heatmap_as_json_and_as_png(live_client: Client, walked) -> None:
    env_id, _ = walked
    params = {"environment_id": env_id, "cell_size_m": 1.0, "camera_ids": ["c1"]}
    heatmap = await live_client.get("/api/v1/analytics/heatmap", params=params)
    assert heatmap.status_code == 200 and heatmap.headers["content-type"].startswith("application/json")
    assert [(c["ix"], c["iy"], c["count"]) for c in heatmap.json()["cells"]] == [(x, 1, 10) for x in range(4)]

    for response in (
        await live_client.get("/api/v1/analytics/heatmap", params={**params, "format": "png"}),
        await live_client.get("/api/v1/analytics/heatmap", params=params, headers={"Accept": "image/png"}),
    ):
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[1] == 800  # the plain background's width


@pytest.mark.parametrize(
    ("params", "status", "text"),
    [
        ({"environment_id": "nowhere"}, 404, "nowhere"),
        ({"environment_id": "{env}", "cell_size_m": 0}, 400, "cell_size_m"),
        ({"environment_id": "{env}", "camera_ids": "c9"}, 400, "c9"),
        (
            {"environment_id": "{env}", "start_time": "2025-01-02T00:00:00Z", "end_time": "2025-01-01T00:00:00Z"},
            400,
            "end_time",
        ),
        ({"environment_id": "{env}", "format": "gif"}, 400, None),
    ],
)
async def test_heatmap_errors_are_problems(live_client: Client, walked, params, status, text, expect_problem) -> None:
    env_id, _ = walked
    params = {k: v.replace("{env}", env_id) if isinstance(v, str) else v for k, v in params.items()}
    body = expect_problem(await live_client.get("/api/v1/analytics/heatmap", params=params), status)
    if text is not None:
        assert text in body["detail"]


async def test_counts_and_trajectory_errors_are_problems(live_client: Client, walked, expect_problem) -> None:
    env_id, _ = walked
    body = expect_problem(
        await live_client.get("/api/v1/analytics/counts", params={"environment_id": env_id, "bucket_seconds": 0}), 400
    )
    assert body["errors"][0]["key"] == "bucket_seconds"
    expect_problem(await live_client.get("/api/v1/analytics/trajectory/2"), 400, "INVALID_ARGUMENT")
    expect_problem(
        await live_client.get("/api/v1/analytics/trajectory/2", params={"task_id": str(uuid.uuid4())}), 404, "NOT_FOUND"
    )
    expect_problem(await live_client.get("/api/v1/analytics/trajectory/two"), 404)  # not a route: the id is a number
