"""Several inference replicas and facades over one PostgreSQL and one Redis.

Replica A is the in-process ``live_service``; replica B is a second in-process service on the
same PostgreSQL, Redis and Triton; replica R runs as a child process so it can be killed. A task
runs on one replica, and every replica and facade serves its events alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from support.auth import admin_headers, authed_channel
from support.sse import sse_blocks

from spoton.v1 import tasks_pb2, tasks_pb2_grpc
from spoton_facade.settings import FacadeSettings
from spoton_inference.app import InferenceApp
from spoton_inference.embedded.ports import LOOPBACK, pick_free_ports
from spoton_inference.embedded.supervisor import ChildProcess, ChildState
from spoton_inference.grpc_server import build_server
from spoton_inference.launch import inference_child
from spoton_inference.services.tasks import TaskAction
from spoton_inference.storage.task_store import TaskStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
BASE = "/api/v1/processing-tasks"
Event = tuple[str, str, str]  # an SSE block's id, event and data, as sent


@dataclasses.dataclass(frozen=True)
class Replica:
    app: InferenceApp
    target: str


@pytest_asyncio.fixture(scope="module")
async def replica_b(live_service) -> AsyncIterator[Replica]:
    (port,) = pick_free_ports(1)
    settings = dataclasses.replace(live_service.settings, grpc_port=port, replica_id="replica-b")
    app = await InferenceApp.create(settings)
    server, _ = build_server(app)
    await server.start()
    try:
        await app.warm_up()
        yield Replica(app, f"{LOOPBACK}:{port}")
    finally:
        await server.stop(grace=1.0)
        await app.close()


def _facade(live_service, target: str) -> FacadeSettings:
    return FacadeSettings(inference_target=target, media_root=live_service.settings.media_root)


async def _sse(url: str, task_id: str, *, after: int | None = None, stop_after: int | None = None) -> list[Event]:
    """The task's SSE events from the facade at ``url`` (heartbeats skipped), optionally resumed."""
    headers = {} if after is None else {"Last-Event-ID": str(after)}
    events: list[Event] = []
    async with (
        httpx.AsyncClient(headers=admin_headers(), base_url=url, timeout=60) as http,
        http.stream("GET", f"{BASE}/{task_id}/events", headers=headers) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        async for block in sse_blocks(response):
            events.append((block["id"], block["event"], block["data"]))
            if len(events) == stop_after:
                break
    return events


async def _watch(target: str, task_id: str) -> list[tasks_pb2.TaskEvent]:
    async with authed_channel(target) as channel:
        call = tasks_pb2_grpc.TaskServiceStub(channel).WatchTask(tasks_pb2.WatchTaskRequest(task_id=task_id))
        return [event async for event in call]


async def _watches_open(app: InferenceApp, expected: int) -> None:
    async with asyncio.timeout(10):
        while True:  # a plain counter in the service: polled, it has no event to wait on
            if app.tasks.open_watches >= expected:
                return
            await asyncio.sleep(0.02)


async def _task(target: str, task_id: str) -> tasks_pb2.Task:
    async with authed_channel(target) as channel:
        return await tasks_pb2_grpc.TaskServiceStub(channel).GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))


async def _until(target: str, task_id: str, state: int) -> tasks_pb2.Task:
    async with asyncio.timeout(60):
        while True:  # polling GetTask is what a client does
            task = await _task(target, task_id)
            if task.state == state:
                return task
            await asyncio.sleep(0.05)


async def test_both_replicas_and_both_facades_deliver_the_same_events(live_service, replica_b, serve_facade):
    a, b = live_service.app, replica_b.app
    env_id = (await a.catalog.register_directory(str(live_service.make_environment("fan-out")))).environment_id
    async with (
        serve_facade(_facade(live_service, live_service.target)) as facade_a,
        serve_facade(_facade(live_service, replica_b.target)) as facade_b,
        httpx.AsyncClient(headers=admin_headers(), base_url=facade_a, timeout=30) as http_a,
        httpx.AsyncClient(headers=admin_headers(), base_url=facade_b, timeout=30) as http_b,
    ):
        task_id = (await http_a.post(f"{BASE}/start", json={"environment_id": env_id})).json()["task_id"]
        assert (await http_a.post(f"{BASE}/{task_id}/control", json={"action": "pause"})).status_code == 200
        # Controls sent to the other replica reach the one that runs the task, and so does its answer.
        again = await http_b.post(f"{BASE}/{task_id}/control", json={"action": "pause"})
        assert again.status_code == 409 and "already paused" in again.json()["detail"], again.json()

        base_a, base_b = a.tasks.open_watches, b.tasks.open_watches

        async def split() -> list[Event]:
            # A browser that reads a few events from facade A, then reconnects to facade B.
            head = await _sse(facade_a, task_id, stop_after=2)
            return head + await _sse(facade_b, task_id, after=int(head[-1][0]))

        readers = [
            asyncio.create_task(_sse(facade_a, task_id)),
            asyncio.create_task(_sse(facade_b, task_id)),
            asyncio.create_task(split()),
        ]
        watchers = [asyncio.create_task(_watch(t, task_id)) for t in (live_service.target, replica_b.target)]
        await _watches_open(a, base_a + 2)
        await _watches_open(b, base_b + 2)
        # Live from here on: every consumer follows the task as it runs, on either replica. Resumed
        # through replica B, which passes it to A: the paused task completes only if it arrived.
        applied = a.control_relay.applied
        assert (await http_b.post(f"{BASE}/{task_id}/control", json={"action": "resume"})).status_code == 200
        assert a.control_relay.applied == applied + 1
        async with asyncio.timeout(120):
            sse_a, sse_b, sse_split = await asyncio.gather(*readers)
            grpc_a, grpc_b = await asyncio.gather(*watchers)

    ids = [int(e[0]) for e in sse_a]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) > 30
    assert sse_a[-1][1] == "status_update" and json.loads(sse_a[-1][2])["state"] == "completed"
    assert sse_b == sse_a and sse_split == sse_a
    assert [e.SerializeToString(deterministic=True) for e in grpc_b] == [
        e.SerializeToString(deterministic=True) for e in grpc_a
    ]
    assert [(e.sequence, e.WhichOneof("payload")) for e in grpc_a] == [(int(i), kind) for i, kind, _ in sse_a]


async def test_a_task_is_cancelled_through_the_replica_that_does_not_run_it(live_service, replica_b):
    env_id = (
        await live_service.app.catalog.register_directory(str(live_service.make_environment("relay")))
    ).environment_id
    async with authed_channel(live_service.target) as a, authed_channel(replica_b.target) as b:
        on_a, on_b = tasks_pb2_grpc.TaskServiceStub(a), tasks_pb2_grpc.TaskServiceStub(b)
        task_id = (await on_a.StartTask(tasks_pb2.StartTaskRequest(environment_id=env_id))).task.task_id
        # Paused on A at once, so it is still running when the cancel arrives.
        await on_a.ControlTask(tasks_pb2.ControlTaskRequest(task_id=task_id, action=tasks_pb2.TASK_ACTION_PAUSE))
        applied = live_service.app.control_relay.applied
        await on_b.ControlTask(tasks_pb2.ControlTaskRequest(task_id=task_id, action=tasks_pb2.TASK_ACTION_CANCEL))
    cancelled = await _until(replica_b.target, task_id, tasks_pb2.TASK_STATE_CANCELLED)
    assert cancelled.frames_processed < cancelled.total_frames
    assert live_service.app.control_relay.applied == applied + 1  # applied by A, the replica running it


async def test_a_running_replica_fails_over_the_tasks_of_one_whose_lease_lapsed(live_service, replica_b):
    """A replica that is gone for good (a deleted pod never restarts under its name) leaves its
    tasks unfinished; the running replicas' sweep fails them, and only them, with a reason."""
    app = live_service.app
    directory = str(live_service.make_environment("fail-over"))
    env_id = (await app.catalog.register_directory(directory)).environment_id
    store = TaskStore(app.db)
    gone = await store.insert_task(env_id, ["c1"], 10, concurrent=True)
    await app.outbox.set_live_state(gone.task_id, {"replica": "replica-gone"})  # no lease: it died
    alive = await store.insert_task(env_id, ["c1"], 10, concurrent=True)
    await app.outbox.set_live_state(alive.task_id, {"replica": replica_b.app.lease.replica_id})
    try:
        # Both replicas sweep at once: the task is failed, and its event sent, exactly once.
        swept = await asyncio.gather(app.tasks.fail_over(), replica_b.app.tasks.fail_over())
        assert sorted(swept[0] + swept[1]) == [gone.task_id]
        failed = await _task(replica_b.target, gone.task_id)
        assert failed.state == tasks_pb2.TASK_STATE_FAILED and "replica replica-gone" in failed.error
        events = await _watch(live_service.target, gone.task_id)
        assert [e.status_update.state for e in events] == [tasks_pb2.TASK_STATE_FAILED]
        assert (await _task(live_service.target, alive.task_id)).state == tasks_pb2.TASK_STATE_QUEUED
    finally:
        await store.fail_unfinished_tasks("test over", [alive.task_id])


async def test_sequence_numbers_go_on_across_a_restart_of_the_inference_service(live_service, make_data_dir):
    """Replica R is killed with a task unfinished and started again: the task fails visibly with
    the next sequence number, and a task replica A runs meanwhile is left alone."""
    a = live_service.app
    env_id = (await a.catalog.register_directory(str(live_service.make_environment("restart")))).environment_id
    (port,) = pick_free_ports(1)
    target = f"{LOOPBACK}:{port}"
    settings = dataclasses.replace(
        live_service.settings,
        data_dir=make_data_dir("replica-r"),
        grpc_port=port,
        inference_target=target,
        replica_id="replica-r",
    )
    r = ChildProcess(inference_child(settings))
    await r.start()
    others = await a.tasks.start(env_id, [])
    try:
        async with authed_channel(target) as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            request = tasks_pb2.StartTaskRequest(environment_id=env_id, allow_concurrent=True)  # beside `others`
            task_id = (await stub.StartTask(request)).task.task_id
            pause = tasks_pb2.TASK_ACTION_PAUSE
            await stub.ControlTask(tasks_pb2.ControlTaskRequest(task_id=task_id, action=pause))
        await a.tasks.control(others.task_id, TaskAction.PAUSE)
        paused = await _until(live_service.target, task_id, tasks_pb2.TASK_STATE_PAUSED)
        before = await _first(live_service.target, task_id, paused.last_sequence)

        os.kill(r.pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            while True:  # the supervisor's view of the child, polled
                if r.status().state is ChildState.FAILED:
                    break
                await asyncio.sleep(0.05)
        await r.start()  # the same replica id: it finds the task it left behind

        after = await _watch(target, task_id)
        assert [e.sequence for e in after] == list(range(1, len(after) + 1)) and len(after) > len(before)
        assert after[: len(before)] == before
        last = after[-1].status_update
        assert last.state == tasks_pb2.TASK_STATE_FAILED and "restart" in last.error
        assert (await _task(live_service.target, task_id)).state == tasks_pb2.TASK_STATE_FAILED
        assert (await _task(live_service.target, others.task_id)).state == tasks_pb2.TASK_STATE_PAUSED
    finally:
        with contextlib.suppress(Exception):
            await a.tasks.control(others.task_id, TaskAction.CANCEL)
        await r.stop()


async def _first(target: str, task_id: str, count: int) -> list[tasks_pb2.TaskEvent]:
    """The first ``count`` events of a task that is still running."""
    async with authed_channel(target) as channel:
        call = tasks_pb2_grpc.TaskServiceStub(channel).WatchTask(tasks_pb2.WatchTaskRequest(task_id=task_id))
        events = []
        async for event in call:
            events.append(event)
            if len(events) == count:
                call.cancel()
                return events
    raise AssertionError(f"the watch ended after {len(events)} of {count} events")
