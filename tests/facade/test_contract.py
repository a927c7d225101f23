"""Input the inference service cannot take is refused by the facade as a 400 problem, before
any gRPC call (nothing listens on ``client``'s inference target: a request that got through
would be a 503), and the OpenAPI document says what is accepted."""

from __future__ import annotations

import typing

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from spoton_facade.routes.jobs import JobStateFilter
from spoton_facade.routes.tasks import TaskStateFilter
from spoton_facade.schemas.catalog import EnvironmentOriginFilter, EnvironmentOriginName
from spoton_facade.schemas.jobs import JobStateName
from spoton_facade.schemas.tasks import TaskStateName

Client = AsyncTestClient[Litestar]
TASK = "0b9c6f5e-6d0e-4d8e-9a51-2f1d8c3b7a10"
CAMERA = {"camera_id": "north"}


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        # Each from issue 15: a 500 or 502 before.
        ("GET", "/api/v1/analytics/trajectory/4294967296?environment_id=site", None),
        ("POST", "/api/v1/environments/site/cameras", {**CAMERA, "height": 1099511627776}),
        ("GET", "/api/v1/analytics/counts?environment_id=site&bucket_seconds=698356871198947456", None),
        ("GET", "/api/v1/processing-tasks?environment_id=a%00b", None),
        # An unknown state, and "unspecified", which as a filter would list every task.
        ("GET", "/api/v1/processing-tasks?state=bogus", None),
        ("GET", "/api/v1/processing-tasks?state=unspecified", None),
        ("GET", "/api/v1/jobs?status=unspecified", None),
        ("GET", "/api/v1/environments?origin=unspecified", None),
        ("GET", "/api/v1/environments?origin=camera", None),
        # Found by schemathesis: an int32 overflow in the facade (500).
        ("GET", "/api/v1/processing-tasks?page_size=22817625482942672", None),
        ("GET", "/api/v1/analytics/trajectory/0?environment_id=site", None),
        ("GET", "/api/v1/analytics/dwell?environment_id=site&global_id=-1", None),
        ("GET", f"/api/v1/processing-tasks/{TASK}/events?last_event_id=99999999999999999999", None),
        ("GET", "/api/v1/processing-tasks/not-a-task/status", None),
        ("GET", "/api/v1/jobs/not-a-job", None),
        ("GET", "/api/v1/environments/a%00b/cameras", None),
        ("POST", f"/api/v1/processing-tasks/{TASK}/control", {"action": "focus", "global_id": 2**31}),
        ("POST", "/api/v1/environments", {"environment_id": "site", "name": "nul\x00"}),
        ("POST", "/api/v1/environments", {"environment_id": "no spaces"}),
        ("PATCH", "/api/v1/environments/site", {"name": "   "}),
        ("PATCH", "/api/v1/environments/site", {"metres_per_pixel": -1}),
        ("PATCH", "/api/v1/environments/site/cameras/north", {"detection_threshold": 1.5}),
        ("POST", "/api/v1/environments/site/zones", {"polygon": [[0, 0], [1, 1]]}),
        ("POST", "/api/v1/environments/site/zones", {"polygon": [[0, 0, 0], [1, 1, 1], [2, 0, 2]]}),
    ],
)
async def test_refused_before_the_service(
    client: Client, expect_problem, method: str, url: str, body: dict[str, object] | None
) -> None:
    response = await client.request(method, url, json=body)
    problem = expect_problem(response, 400)
    assert "grpc_status" not in problem  # refused here, not by the service


async def test_valid_input_reaches_the_service(client: Client, expect_problem) -> None:
    """The bounds are not too tight: values at them pass on to the (absent) service."""
    for url in (
        "/api/v1/analytics/trajectory/2147483647?environment_id=site",
        "/api/v1/processing-tasks?page_size=200&state=cancelled&environment_id=site",
        f"/api/v1/processing-tasks/{TASK}/status",
        # Offsets that put a time past either end of the Timestamp range (a 500 before).
        "/api/v1/analytics/counts?environment_id=site&start_time=0001-01-01T00:00:00%2B11:00",
        "/api/v1/analytics/dwell?environment_id=site&end_time=9999-12-31T23:59:59-11:00",
    ):
        expect_problem(await client.get(url), 503, "UNAVAILABLE")
    response = await client.post("/api/v1/environments/site/cameras", json={**CAMERA, "height": 2**31 - 1})
    expect_problem(response, 503, "UNAVAILABLE")


async def test_options_allows_every_method_of_the_path(client: Client) -> None:
    for url, methods in (
        ("/api/v1/environments", "GET, OPTIONS, POST"),
        ("/api/v1/environments/site", "DELETE, GET, OPTIONS, PATCH"),
        ("/api/v1/environments/site/zones/door", "DELETE, GET, OPTIONS, PATCH"),
    ):
        response = await client.options(url)
        assert response.status_code == 204
        assert response.headers["allow"] == methods


def test_state_filters_are_the_states_but_unspecified() -> None:
    assert set(typing.get_args(TaskStateFilter)) == {s.value for s in TaskStateName} - {"unspecified"}
    assert set(typing.get_args(JobStateFilter)) == {s.value for s in JobStateName} - {"unspecified"}
    assert set(typing.get_args(EnvironmentOriginFilter)) == {o.value for o in EnvironmentOriginName} - {"unspecified"}


async def test_openapi_says_what_is_accepted(client: Client) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    schemas, paths = document["components"]["schemas"], document["paths"]
    # Unknown body fields are refused, and optional fields keep their bounds.
    camera_patch = schemas["CameraPatchBody"]
    assert camera_patch["additionalProperties"] is False
    assert {"type": "integer", "minimum": 0, "maximum": 2**31 - 1} in camera_patch["properties"]["height"]["anyOf"]
    # A point is exactly [x, y].
    point = schemas["ZoneBody"]["properties"]["polygon"]["items"]
    assert (point["minItems"], point["maxItems"]) == (2, 2)
    # Path and query strings hold no NUL; task ids are UUIDs.
    listing = {p["name"]: p["schema"] for p in paths["/api/v1/processing-tasks"]["get"]["parameters"]}
    assert listing["environment_id"]["pattern"] == "^[^\\x00]*$"
    assert (listing["page_size"]["minimum"], listing["page_size"]["maximum"]) == (0, 200)
    status = paths["/api/v1/processing-tasks/{task_id}/status"]["get"]["parameters"][0]["schema"]
    assert status["pattern"].startswith("^[0-9a-fA-F]{8}-")
    # Last-Modified is an HTTP-date, not an RFC 3339 date-time; the export may be JSON.
    assert paths["/"]["get"]["responses"]["200"]["headers"]["last-modified"]["schema"] == {"type": "string"}
    export = paths["/api/v1/environments/{environment_id}/cameras/export"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"text/csv", "application/json"}
