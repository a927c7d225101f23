"""Environment and camera routes over the real inference service: each a gRPC call, answered in
the REST shape, with gRPC errors as problem+json."""

from __future__ import annotations

import httpx
import pytest

from spoton_inference.domain.environment import EnvironmentOrigin

Client = httpx.AsyncClient
BASE = "/api/v1/environments"
SQUARE = [[0, 0], [640, 0], [640, 480], [0, 480]]
HOMOGRAPHY = {"image_points": SQUARE, "map_points": [[u / 100, v / 100] for u, v in SQUARE]}


async def test_environment_and_camera_round_trip(live_client: Client, expect_problem) -> None:
    created = await live_client.post(
        BASE,
        json={
            "environment_id": "rest-site",
            "name": "Hall",
            "metres_per_pixel": 0.02,
            "cameras": [{"camera_id": "north", "fps": 12.5, "homography": HOMOGRAPHY}],
        },
    )
    assert created.status_code == 201, created.text
    env = created.json()
    assert (env["environment_id"], env["name"], env["map"]["metres_per_pixel"]) == ("rest-site", "Hall", 0.02)
    [north] = env["cameras"]
    assert north["homography"]["reprojection_error_m"] < 1e-6 and len(north["homography"]["matrix"]) == 9
    assert north["homography"]["image_points"] == SQUARE
    assert (await live_client.get(f"{BASE}/rest-site")).json() == env
    assert "rest-site" in [e["environment_id"] for e in (await live_client.get(BASE)).json()["environments"]]

    patched = await live_client.patch(f"{BASE}/rest-site", json={"name": "Big hall"})
    assert patched.status_code == 200 and patched.json()["name"] == "Big hall"
    assert patched.json()["map"]["metres_per_pixel"] == 0.02  # untouched

    camera = await live_client.post(
        f"{BASE}/rest-site/cameras", json={"camera_id": "south", "fps": 10, "width": 640, "height": 480}
    )
    assert camera.status_code == 201 and camera.json()["homography"] is None
    matrix = [0.01, 0, 0, 0, 0.01, 0, 0, 0, 1]
    updated = await live_client.patch(f"{BASE}/rest-site/cameras/south", json={"homography": {"matrix": matrix}})
    assert updated.status_code == 200 and updated.json()["homography"]["matrix"] == matrix
    assert (await live_client.get(f"{BASE}/rest-site/cameras/south")).json() == updated.json()
    listed = (await live_client.get(f"{BASE}/rest-site/cameras")).json()["cameras"]
    assert [c["camera_id"] for c in listed] == ["north", "south"]

    deleted = await live_client.delete(f"{BASE}/rest-site/cameras/south")
    assert deleted.status_code == 204 and not deleted.content
    expect_problem(await live_client.get(f"{BASE}/rest-site/cameras/south"), 404, "NOT_FOUND")
    assert (await live_client.delete(f"{BASE}/rest-site")).status_code == 204
    expect_problem(await live_client.get(f"{BASE}/rest-site"), 404, "NOT_FOUND")


async def test_errors_are_problems_that_say_what_to_fix(live_client: Client, expect_problem) -> None:
    await live_client.post(BASE, json={"environment_id": "rest-errors"})
    expect_problem(await live_client.post(BASE, json={"environment_id": "rest-errors"}), 409, "ALREADY_EXISTS")
    bad = {"camera_id": "c1", "fps": 10, "homography": {"image_points": SQUARE[:3], "map_points": SQUARE[:3]}}
    body = expect_problem(await live_client.post(f"{BASE}/rest-errors/cameras", json=bad), 400, "INVALID_ARGUMENT")
    assert "camera 'c1'" in body["detail"] and "at least 4 point pairs" in body["detail"]
    expect_problem(await live_client.patch(f"{BASE}/nowhere", json={"name": "x"}), 404, "NOT_FOUND")
    expect_problem(await live_client.delete(f"{BASE}/nowhere"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", BASE, {"name": "no id"}),
        ("POST", BASE, {"environment_id": "x", "colour": "red"}),
        ("POST", f"{BASE}/x/cameras", {"camera_id": "c1", "homography": {"matrix": "identity"}}),
        ("PATCH", f"{BASE}/x/cameras/c1", {"fps": "fast"}),
    ],
)
async def test_malformed_bodies_are_refused_before_any_call(live_client: Client, method, url, body) -> None:
    response = await live_client.request(method, url, json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "grpc_status" not in response.json()


async def test_register_a_directory(live_client: Client, live_service, expect_problem) -> None:
    path = live_service.make_environment("rest-registered")
    response = await live_client.post(f"{BASE}/:register", json={"path": str(path)})
    assert response.status_code == 200, response.text
    env = response.json()
    assert env["environment_id"] == "rest-registered"
    assert [c["sub_videos"] for c in env["cameras"]] == [["sub_video_01.mp4", "sub_video_02.mp4"]] * 2
    # A missing directory and one without environment.json answer alike: registration must not
    # tell which directories exist on the server.
    missing = await live_client.post(f"{BASE}/:register", json={"path": str(path / "nope")})
    bare = await live_client.post(f"{BASE}/:register", json={"path": str(path / "cameras")})
    missing_detail = expect_problem(missing, 400, "INVALID_ARGUMENT")["detail"]
    bare_detail = expect_problem(bare, 400, "INVALID_ARGUMENT")["detail"]
    assert missing_detail.replace("/nope", "") == bare_detail.replace("/cameras", "")


async def test_environments_say_their_origin_and_filter_on_it(
    live_client: Client, live_service, expect_problem
) -> None:
    app = live_service.app
    site = await app.catalog.register_directory(str(live_service.make_environment("rest-origin-site")))
    job_dir = live_service.make_environment("rest-origin-job")
    job = await app.catalog.register_directory(str(job_dir), origin=EnvironmentOrigin.JOB)

    def ids(response: httpx.Response) -> dict[str, str]:
        assert response.status_code == 200, response.text
        return {e["environment_id"]: e["origin"] for e in response.json()["environments"]}

    everything = ids(await live_client.get(BASE))
    assert everything[site.environment_id] == "site" and everything[job.environment_id] == "job"
    sites = ids(await live_client.get(BASE, params={"origin": "site"}))
    assert site.environment_id in sites and job.environment_id not in sites and set(sites.values()) == {"site"}
    jobs = ids(await live_client.get(BASE, params={"origin": "job"}))
    assert job.environment_id in jobs and site.environment_id not in jobs and set(jobs.values()) == {"job"}
    assert (await live_client.get(f"{BASE}/{job.environment_id}")).json()["origin"] == "job"
    expect_problem(await live_client.get(BASE, params={"origin": "unspecified"}), 400)
