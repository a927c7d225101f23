"""Redis stopped mid-task and started again: tracking goes on, health says so, new watches
are told to retry, the open gRPC and SSE watches get every event with no gap once Redis is
back, and the history in PostgreSQL is whole."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time

import asyncpg
import grpc
import httpx
import pytest
import pytest_asyncio
from support.auth import ADMIN_API_KEY, admin_headers

from spoton.v1 import tasks_pb2
from spoton_client.client import SpotOnClient
from spoton_facade.settings import FacadeSettings
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate
from spoton_inference.services.health import PROBE_INTERVAL_S, PROBE_TIMEOUT_S

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest_asyncio.fixture(scope="module")
async def environment_id(live_service, tmp_path_factory) -> str:
    config = dataclasses.replace(demo_config(seed=5), frames_per_batch=10, n_people=2)
    env_dir = generate(config, tmp_path_factory.mktemp("outage") / "env")
    return (await live_service.app.catalog.register_directory(str(env_dir))).environment_id


def _redis(health) -> tuple[str, str]:
    component = next(c for c in health.components if c.name == "redis")
    return component.status, component.detail


async def _until_redis(client: SpotOnClient, done) -> tuple[str, str, str]:
    """(overall status, redis status, redis detail) once ``done(...)`` holds: GetHealth answers from the
    background prober's newest round, so a change shows within one interval plus the probe bound."""
    async with asyncio.timeout(PROBE_INTERVAL_S + PROBE_TIMEOUT_S + 3.0):
        while True:
            health = await client.health()
            status, detail = _redis(health)
            if done(health.status, status, detail):
                return health.status, status, detail
            await asyncio.sleep(0.05)


async def _control(stub, task_id: str, action: int) -> None:
    await stub.ControlTask(tasks_pb2.ControlTaskRequest(task_id=task_id, action=action))


async def _until_state(stub, task_id: str, state: int) -> tasks_pb2.Task:
    async with asyncio.timeout(120):
        while True:  # polling GetTask is what a client does
            task = await stub.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))
            if task.state == state:
                return task
            await asyncio.sleep(0.05)


async def test_tracking_goes_on_through_a_redis_outage_and_nothing_is_lost(live_service, environment_id, serve_facade):
    redis, app = live_service.redis, live_service.app
    facade_settings = FacadeSettings(
        inference_target=live_service.target, media_root=live_service.settings.media_root, sse_heartbeat_seconds=0.2
    )
    async with (
        SpotOnClient(live_service.target, api_key=ADMIN_API_KEY) as client,
        serve_facade(facade_settings) as facade,
        httpx.AsyncClient(headers=admin_headers(), base_url=facade, timeout=60) as http,
    ):
        stub = client.tasks
        task = await client.start_task(environment_id)
        await _control(stub, task.task_id, tasks_pb2.TASK_ACTION_PAUSE)
        watching = app.tasks.open_watches
        watch = asyncio.create_task(_collect(client, task.task_id))
        sse = asyncio.create_task(_sse_ids(http, task.task_id))
        await _open_watches(app, watching + 2)
        try:
            await redis.stop()
            _, status, detail = await _until_redis(client, lambda overall, status, detail: status != "healthy")
            assert status == "degraded" and "unreachable" in detail and "SPOTON_REDIS_URL" in detail

            # Resumed, run and finished with Redis down: the record in PostgreSQL follows it.
            await _control(stub, task.task_id, tasks_pb2.TASK_ACTION_RESUME)
            done = await _until_state(stub, task.task_id, tasks_pb2.TASK_STATE_COMPLETED)
            assert done.frames_processed == done.total_frames > 0
            overall, status, detail = await _until_redis(
                client, lambda overall, status, detail: f"{app.outbox.depth} events waiting" in detail
            )
            assert overall == "degraded" and status == "degraded"
            assert app.outbox.depth > 0 and f"{app.outbox.depth} events waiting" in detail
            with pytest.raises(grpc.aio.AioRpcError) as refused:  # a new watch is told to come back
                await anext(aiter(stub.WatchTask(tasks_pb2.WatchTaskRequest(task_id=task.task_id))))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE and "retry" in refused.value.details()
            # A late browser joins the facade's shared stream (checked by GetTask, from PostgreSQL)
            # and waits for Redis with the others instead of being refused.
            late = asyncio.create_task(_sse_ids(http, task.task_id))
            await asyncio.sleep(0.5)
            assert not watch.done() and not sse.done() and not late.done()  # the open ones wait for Redis
        finally:
            await redis.start()
        async with asyncio.timeout(30):
            events, sse_ids, late_ids = await asyncio.gather(watch, sse, late)
            while True:  # health is polled, as a monitor would
                if (await client.health()).status == "healthy":
                    break
                await asyncio.sleep(0.1)
        assert app.outbox.lost == 0
        assert (await client.get_task(task.task_id)).last_sequence == len(events)

    assert [e.sequence for e in events] == list(range(1, len(events) + 1)) == sse_ids == late_ids
    assert events[-1].status_update.state == tasks_pb2.TASK_STATE_COMPLETED
    frames = [e.tracking_update.global_frame_index for e in events if e.HasField("tracking_update")]
    assert frames == list(range(done.total_frames))
    exported = sum(
        len(f.path.read_text().splitlines())
        for f in await app.tasks.exports(task.task_id)
        if f.name.endswith(".global.txt") and ".online." not in f.name
    )
    conn = await asyncpg.connect(live_service.settings.postgres_dsn)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM track_points WHERE task_id = $1::uuid", task.task_id)
    finally:
        await conn.close()
    assert stored == exported > 0


async def _sse_ids(http: httpx.AsyncClient, task_id: str) -> list[int]:
    async with http.stream("GET", f"/api/v1/processing-tasks/{task_id}/events") as response:
        assert response.status_code == 200
        return [int(line[4:]) async for line in response.aiter_lines() if line.startswith("id: ")]


async def _collect(client: SpotOnClient, task_id: str) -> list[tasks_pb2.TaskEvent]:
    return [event async for event in client.watch(task_id)]


async def _open_watches(app, expected: int) -> None:
    async with asyncio.timeout(10):
        while True:  # a plain counter in the service: polled, it has no event to wait on
            if app.tasks.open_watches >= expected:
                return
            await asyncio.sleep(0.02)


async def test_get_task_and_list_tasks_answer_from_postgres_while_redis_is_frozen(live_service, environment_id):
    async with SpotOnClient(live_service.target, api_key=ADMIN_API_KEY) as client:
        stub = client.tasks
        task = await client.start_task(environment_id)
        await _until_state(stub, task.task_id, tasks_pb2.TASK_STATE_COMPLETED)
        pid = live_service.redis.pid
        os.kill(pid, signal.SIGSTOP)  # frozen: connections open, no answers
        try:
            timings = {}
            for name, call in (
                ("GetTask", lambda: stub.GetTask(tasks_pb2.GetTaskRequest(task_id=task.task_id), timeout=10)),
                ("ListTasks", lambda: stub.ListTasks(tasks_pb2.ListTasksRequest(page_size=50), timeout=10)),
                ("GetTask again", lambda: stub.GetTask(tasks_pb2.GetTaskRequest(task_id=task.task_id), timeout=10)),
            ):
                started = time.monotonic()
                reply = await call()
                timings[name] = time.monotonic() - started
                if name == "ListTasks":
                    assert task.task_id in [t.task_id for t in reply.tasks]
                else:
                    assert reply.state == tasks_pb2.TASK_STATE_COMPLETED  # the record, from PostgreSQL
        finally:
            os.kill(pid, signal.SIGCONT)
        print("answered with Redis frozen in " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
        limit = live_service.settings.redis_timeout_s + 1.0
        assert all(t < limit for t in timings.values()), timings
        async with asyncio.timeout(15):  # Redis back: the sequence numbers are there again
            while True:
                if (await client.get_task(task.task_id)).last_sequence > 0:
                    break
                await asyncio.sleep(0.1)
