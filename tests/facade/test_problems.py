"""Errors become RFC 9457 problem+json: gRPC statuses, Litestar validation and unknown routes."""

from __future__ import annotations

import grpc
import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from spoton_facade.problems import GRPC_TO_HTTP, PROBLEM_MEDIA_TYPE

Client = AsyncTestClient[Litestar]

# google.rpc.Code's documented HTTP mapping (googleapis, google/rpc/code.proto): an
# independent reference the facade's table is held to, rather than a copy of the table.
GOOGLE_RPC_HTTP = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
# Where the facade departs from it, and why; any other departure fails the test.
DEPARTURES = {
    # The facade cancels only when its client has gone, so a CANCELLED that reaches a response
    # is the service dropping the call (shutting down); 499 is no HTTP status.
    grpc.StatusCode.CANCELLED: 503,
    # The upstream failed, not the facade (whose own errors are 500).
    grpc.StatusCode.UNKNOWN: 502,
    grpc.StatusCode.INTERNAL: 502,
    grpc.StatusCode.DATA_LOSS: 502,
    # The resource is in the wrong state for the call (as ABORTED, already 409).
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    # Resuming events after a sequence the service no longer keeps (or an expired page token):
    # gone, so the client starts over rather than retries.
    grpc.StatusCode.OUT_OF_RANGE: 410,
}
# What each gRPC code must become.
EXPECTED = GOOGLE_RPC_HTTP | DEPARTURES


def test_every_error_code_is_mapped() -> None:
    assert set(GRPC_TO_HTTP) == set(grpc.StatusCode) - {grpc.StatusCode.OK}
    assert GRPC_TO_HTTP == EXPECTED


def test_callers_faults_are_4xx_and_the_service_s_are_5xx() -> None:
    callers = {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
    assert {c for c, status in GRPC_TO_HTTP.items() if 400 <= status < 500} == callers
    assert all(500 <= status < 600 for c, status in GRPC_TO_HTTP.items() if c not in callers)


@get("/test/rpc-error/{code:str}")
async def raise_rpc_error(code: FromPath[str]) -> None:
    raise grpc.aio.AioRpcError(grpc.StatusCode[code], grpc.aio.Metadata(), grpc.aio.Metadata(), f"{code} happened")


@get("/test/crash")
async def crash() -> None:
    raise RuntimeError("secret internals")


@get("/test/task-running")
async def refuse_a_second_task() -> None:
    trailing = grpc.aio.Metadata(("spoton-error-reason", "task-running"), ("spoton-task-id", "t-1"))
    raise grpc.aio.AioRpcError(grpc.StatusCode.FAILED_PRECONDITION, grpc.aio.Metadata(), trailing, "t-1 runs")


@pytest.fixture
def app(app: Litestar) -> Litestar:
    app.register(raise_rpc_error)
    app.register(crash)
    app.register(refuse_a_second_task)
    return app


@pytest.mark.parametrize("code", list(EXPECTED))
async def test_grpc_status_to_problem(client: Client, code: grpc.StatusCode) -> None:
    response = await client.get(f"/test/rpc-error/{code.name}")
    assert response.status_code == EXPECTED[code]
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json() == {
        "type": "urn:spoton:problem:grpc:" + code.name.lower().replace("_", "-"),
        "title": response.reason_phrase,
        "status": EXPECTED[code],
        "detail": f"{code.name} happened",
        "instance": f"/test/rpc-error/{code.name}",
        "grpc_status": code.name,
    }


async def test_a_refused_second_task_is_a_conflict_naming_the_running_one(client: Client) -> None:
    response = await client.get("/test/task-running")
    assert response.status_code == 409 and response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert (body["task_id"], body["grpc_status"], body["detail"]) == ("t-1", "FAILED_PRECONDITION", "t-1 runs")


async def test_unhandled_error_is_a_bare_500(client: Client) -> None:
    response = await client.get("/test/crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "secret internals" not in response.text
    assert response.json()["instance"] == "/test/crash"


async def test_unknown_route(client: Client) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert body["instance"] == "/api/v1/nothing-here"


async def test_wrong_method(client: Client) -> None:
    response = await client.delete("/api/v1/environments")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "GET" in response.headers["allow"]


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("POST", "/api/v1/processing-tasks/start", {"json": {}}),
        ("POST", "/api/v1/processing-tasks/start", {"json": {"environment_id": ""}}),
        ("POST", "/api/v1/processing-tasks/start", {"json": {"environment_id": "e", "camera_ids": "c1"}}),
        ("POST", "/api/v1/processing-tasks/start", {"json": {"environment_id": "e", "surprise": 1}}),
        (
            "POST",
            "/api/v1/processing-tasks/start",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
        ),
        ("GET", "/api/v1/processing-tasks?page_size=-1", {}),
        ("GET", "/api/v1/processing-tasks?state=bogus", {}),
        ("GET", "/api/v1/processing-tasks/t1/events?last_event_id=-3", {}),
        ("GET", "/api/v1/processing-tasks/t1/events", {"headers": {"Last-Event-ID": "abc"}}),
    ],
)
async def test_validation_errors(client: Client, method: str, url: str, kwargs: dict[str, object]) -> None:
    response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["status"] == 400
    assert body["type"] == "about:blank"
    assert body["detail"]
