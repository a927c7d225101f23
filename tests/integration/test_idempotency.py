"""Retries make no duplicates: StartTask (gRPC and ``POST /processing-tasks/start``) sent again
with its idempotency key answers the first request's task, also when the copies race; the key
with a different request is refused, and the task list holds one task either way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import httpx
import pytest
import pytest_asyncio
from support.auth import admin_headers, authed_channel

from spoton.v1 import tasks_pb2, tasks_pb2_grpc
from spoton_facade.settings import FacadeSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest_asyncio.fixture
async def stub(live_service) -> AsyncIterator[tasks_pb2_grpc.TaskServiceStub]:
    async with authed_channel(live_service.target) as channel:
        yield tasks_pb2_grpc.TaskServiceStub(channel)


@pytest.fixture
def new_environment(live_service) -> Callable[[], Awaitable[str]]:
    """A tiny environment of its own for each call, so its task list is the test's alone."""

    async def make() -> str:
        path = live_service.make_environment(f"idem-{uuid.uuid4().hex[:8]}")
        return (await live_service.app.catalog.register_directory(str(path))).environment_id

    return make


async def _tasks_of(stub: tasks_pb2_grpc.TaskServiceStub, environment_id: str) -> list[str]:
    page = await stub.ListTasks(tasks_pb2.ListTasksRequest(environment_id=environment_id, page_size=200))
    return [t.task_id for t in page.tasks]


def _reason(exc: grpc.aio.AioRpcError) -> str | None:
    return dict(exc.trailing_metadata() or ()).get("spoton-error-reason")


async def test_a_retried_start_answers_the_first_task(stub, new_environment):
    env = await new_environment()
    request = tasks_pb2.StartTaskRequest(environment_id=env, idempotency_key=str(uuid.uuid4()))
    first = (await stub.StartTask(request)).task
    again = (await stub.StartTask(request)).task
    assert again.task_id == first.task_id
    assert await _tasks_of(stub, env) == [first.task_id]
    # Without a key, or with another one, a start is a new task.
    other = (await stub.StartTask(tasks_pb2.StartTaskRequest(environment_id=env, allow_concurrent=True))).task
    assert other.task_id != first.task_id
    assert sorted(await _tasks_of(stub, env)) == sorted([first.task_id, other.task_id])


async def test_copies_racing_with_one_key_start_one_task(stub, new_environment):
    env = await new_environment()
    request = tasks_pb2.StartTaskRequest(environment_id=env, camera_ids=["c1"], idempotency_key=str(uuid.uuid4()))
    answers = await asyncio.gather(*(stub.StartTask(request) for _ in range(8)))
    assert len({a.task.task_id for a in answers}) == 1
    assert await _tasks_of(stub, env) == [answers[0].task.task_id]


async def test_the_key_with_a_different_request_is_refused(stub, new_environment):
    env = await new_environment()
    key = str(uuid.uuid4())
    first = (await stub.StartTask(tasks_pb2.StartTaskRequest(environment_id=env, idempotency_key=key))).task
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.StartTask(tasks_pb2.StartTaskRequest(environment_id=env, camera_ids=["c1"], idempotency_key=key))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _reason(refused.value) == "idempotency-key-reused"
    assert "different request" in refused.value.details()
    assert await _tasks_of(stub, env) == [first.task_id]


@pytest.mark.parametrize("key", ["has space", 'a"quote', "x" * 256, "é"], ids=["space", "quote", "long", "non-ascii"])
async def test_a_malformed_key_is_invalid_argument(stub, new_environment, key):
    env = await new_environment()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.StartTask(tasks_pb2.StartTaskRequest(environment_id=env, idempotency_key=key))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "idempotency_key" in refused.value.details()
    assert await _tasks_of(stub, env) == []


@pytest_asyncio.fixture
async def rest(live_service, serve_facade) -> AsyncIterator[httpx.AsyncClient]:
    settings = FacadeSettings(inference_target=live_service.target, media_root=live_service.settings.media_root)
    async with (
        serve_facade(settings) as url,
        httpx.AsyncClient(headers=admin_headers(), base_url=url, timeout=30) as client,
    ):
        yield client


async def test_the_rest_start_route_takes_the_idempotency_key_header(rest, stub, new_environment):
    env = await new_environment()
    # A structured-field string, as the IETF draft writes it; the bare value is the same key.
    key = str(uuid.uuid4())
    first = await rest.post(
        "/api/v1/processing-tasks/start", json={"environment_id": env}, headers={"Idempotency-Key": f'"{key}"'}
    )
    assert first.status_code == 202, first.text
    racing = await asyncio.gather(
        *(
            rest.post("/api/v1/processing-tasks/start", json={"environment_id": env}, headers={"Idempotency-Key": key})
            for _ in range(4)
        )
    )
    assert {r.status_code for r in racing} == {202}
    assert {r.json()["task_id"] for r in racing} == {first.json()["task_id"]}
    assert await _tasks_of(stub, env) == [first.json()["task_id"]]

    reused = await rest.post(
        "/api/v1/processing-tasks/start",
        json={"environment_id": env, "camera_ids": ["c2"]},
        headers={"Idempotency-Key": key},
    )
    assert reused.status_code == 422, reused.text
    assert reused.headers["content-type"] == "application/problem+json"
    assert "different request" in reused.json()["detail"]
    empty = await rest.post(
        "/api/v1/processing-tasks/start", json={"environment_id": env}, headers={"Idempotency-Key": '""'}
    )
    assert empty.status_code == 400 and "Idempotency-Key" in empty.json()["detail"]
    assert await _tasks_of(stub, env) == [first.json()["task_id"]]


async def test_a_key_past_its_time_starts_a_new_task(stub, new_environment, live_service):
    env = await new_environment()
    # The second start runs beside the first, which may not have ended.
    request = tasks_pb2.StartTaskRequest(environment_id=env, idempotency_key=str(uuid.uuid4()), allow_concurrent=True)
    first = (await stub.StartTask(request)).task
    ttl_s = live_service.settings.idempotency_key_ttl_s
    async with live_service.app.db.pool.acquire() as conn:  # as if the key had been used that long ago
        await conn.execute(
            "UPDATE idempotency_keys SET created_at = now() - make_interval(secs => $2) WHERE key = $1",
            request.idempotency_key,
            ttl_s + 1,
        )
    second = (await stub.StartTask(request)).task
    assert second.task_id != first.task_id
    assert (await stub.StartTask(request)).task.task_id == second.task_id  # remembered afresh
    assert sorted(await _tasks_of(stub, env)) == sorted([first.task_id, second.task_id])
