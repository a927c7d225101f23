"""Webhooks end to end on real parts: an inference service of its own (PostgreSQL outbox,
triggers, dispatcher), SinkService over gRPC, and a real aiohttp receiver on loopback.

Events reach the outbox the way the pipeline writes them (a real task's state changes, and
person events through TaskHistory and the HistoryWriter), never by inserting outbox rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from support.auth import authed_channel, make_key
from support.services import serving
from support.webhook_receiver import LOOPBACK, WebhookReceiver, verify

from spoton.v1 import sinks_pb2, sinks_pb2_grpc, tasks_pb2, tasks_pb2_grpc
from spoton_inference.embedded.ports import pick_free_port
from spoton_inference.metrics import start_metrics_server
from spoton_inference.pipeline.history import TaskHistory
from spoton_inference.services.secrets import SecretBox
from spoton_inference.services.sinks import EVENT_TYPES
from spoton_inference.services.sinks_path import apply_sinks_path
from spoton_inference.storage.postgres import Database
from spoton_inference.storage.sink_store import SinkStore

pytestmark = pytest.mark.integration

SECRET = "test-webhook-secret-" + uuid.uuid4().hex
WAIT_S = 20.0
# Fast enough for a test: retries from 50 ms, at most 300 ms apart; polls every 200 ms.
FAST = {
    "sink_allowed_hosts": (LOOPBACK,),
    "sink_poll_interval_s": 0.2,
    "sink_retry_initial_s": 0.05,
    "sink_retry_max_s": 0.3,
    "sink_timeout_s": 2.0,
}
FINAL = (tasks_pb2.TASK_STATE_COMPLETED, tasks_pb2.TASK_STATE_FAILED, tasks_pb2.TASK_STATE_CANCELLED)


async def until(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll the (async) ``check`` until it returns something truthy."""
    async with asyncio.timeout(timeout_s):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.05)
    raise AssertionError(what)  # pragma: no cover (the timeout raises first)


def target(settings) -> str:
    return f"{settings.grpc_host}:{settings.grpc_port}"


@pytest_asyncio.fixture(scope="module")
async def hooks(service_settings) -> AsyncIterator[tuple[Any, Any]]:
    """(app, settings) of a service of this module's own, with fast sink retries."""
    settings = await service_settings("sinks_webhooks", **FAST)
    async with serving(settings) as app:
        yield app, settings


async def register(app, live_service, environment_id: str) -> str:
    env = await app.catalog.register_directory(str(live_service.make_environment(environment_id)))
    return env.environment_id


async def create_sink(stub, environment_id: str, url: str, **fields: Any) -> sinks_pb2.Sink:
    request = sinks_pb2.CreateSinkRequest(
        environment_id=environment_id,
        name=fields.pop("name", "hook"),
        kind=sinks_pb2.SINK_KIND_WEBHOOK,
        url=url,
        event_types=fields.pop("event_types", list(EVENT_TYPES)),
        secret=fields.pop("secret", SECRET),
        **fields,
    )
    return await stub.CreateSink(request, timeout=10)


def person_events(app, environment_id: str, gids: list[int]) -> list[int]:
    """Appear then leave for each global id, through the pipeline's TaskHistory into the
    HistoryWriter (which writes the `events` rows the triggers queue); the gids in order."""
    history = TaskHistory(uuid.uuid4(), environment_id, dt.datetime.now(dt.UTC), 10.0, [], app.history)
    for frame, gid in enumerate(gids):
        history.camera_event("appeared", frame, "c1", gid)
        history.camera_event("left", frame + 100, "c1", gid)
    return gids


async def deliveries(stub, sink_id: str, state: int = 0) -> list[sinks_pb2.SinkDelivery]:
    request = sinks_pb2.ListSinkDeliveriesRequest(sink_id=sink_id, state=state, page_size=1000)
    reply = await stub.ListSinkDeliveries(request, timeout=10)
    return sorted(reply.deliveries, key=lambda d: d.delivery_id)


async def run_task(settings, environment_id: str) -> str:
    async with authed_channel(target(settings)) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        task = (await tasks.StartTask(tasks_pb2.StartTaskRequest(environment_id=environment_id), timeout=30)).task

        async def finished() -> bool:
            reply = await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=task.task_id), timeout=10)
            return reply.state in FINAL

        await until(finished, "the task did not finish", timeout_s=120)
    return task.task_id


async def test_a_receiver_down_for_a_while_gets_every_event_once_back_in_order_signed(
    service_settings, live_service
) -> None:
    """Down first; events of a real task and of people queue and are retried; the service
    restarts in between; then the receiver is up and gets every event, in order, signed."""
    settings = await service_settings("sinks_redelivery", **FAST)
    receiver = WebhookReceiver()  # not listening yet: connections are refused
    async with serving(settings) as app, authed_channel(target(settings)) as channel:
        stub = sinks_pb2_grpc.SinkServiceStub(channel)
        environment_id = await register(app, live_service, "hooks-down")
        sink = await create_sink(stub, environment_id, receiver.url)
        task_id = await run_task(settings, environment_id)
        person_events(app, environment_id, [1, 2, 3])
        # The task's creation and state changes, then 6 person events: all pending, the head retried.
        queued = await until(lambda: _pending_with_people(stub, sink.sink_id, 6), "events not queued and retried")
        status = (await stub.GetSink(sinks_pb2.GetSinkRequest(sink_id=sink.sink_id), timeout=10)).status
        assert status.pending == len(queued) and status.delivered == 0
        assert "ConnectError" in status.last_error, status.last_error
    # The service is down (a restart): the outbox is in PostgreSQL only.
    await receiver.start()
    try:
        async with serving(settings) as app, authed_channel(target(settings)) as channel:
            stub = sinks_pb2_grpc.SinkServiceStub(channel)
            await until(lambda: _received(receiver, len(queued)), "not every event arrived")
            rows = await deliveries(stub, sink.sink_id)
    finally:
        await receiver.stop()
    ids = [d.delivery_id for d in queued]
    got = [r.document["id"] for r in receiver.received]
    # Every event, once each, in the outbox's order (nothing after the retried head overtook it).
    assert got[len(got) - len(ids) :] == ids and sorted(set(got)) == ids
    for r in receiver.received:
        doc = r.document
        assert verify(SECRET, r.body, r.headers["X-SpotOn-Signature"])
        assert r.headers["X-SpotOn-Delivery"] == str(doc["id"])
        assert r.headers["X-SpotOn-Event"] == doc["type"] and r.headers["Content-Type"] == "application/json"
        assert doc["environment_id"] == environment_id
    documents = [r.document for r in receiver.received[-len(ids) :]]
    task_docs = [d for d in documents if d["type"] == "task.state_changed"]
    assert task_docs[0]["data"]["state"] == "queued" and task_docs[0]["data"]["previous_state"] is None
    assert task_docs[-1]["data"]["state"] == "completed" and all(d["task_id"] == task_id for d in task_docs)
    assert all(d["camera_id"] is None for d in task_docs)
    people = [(d["type"], d["data"]["global_id"], d["camera_id"]) for d in documents if d["type"].startswith("person")]
    assert people == [(kind, gid, "c1") for gid in (1, 2, 3) for kind in ("person.appeared", "person.left")]
    assert all(r.state == sinks_pb2.DELIVERY_STATE_DELIVERED for r in rows)
    assert all(r.attempts >= 1 for r in rows) and rows[0].attempts > 1  # the head was retried


async def _pending_with_retries(stub, sink_id: str, minimum: int) -> list[sinks_pb2.SinkDelivery] | None:
    rows = await deliveries(stub, sink_id, sinks_pb2.DELIVERY_STATE_PENDING)
    return rows if len(rows) >= minimum and rows[0].attempts >= 2 else None


async def _pending_with_people(stub, sink_id: str, people: int) -> list[sinks_pb2.SinkDelivery] | None:
    rows = await _pending_with_retries(stub, sink_id, minimum=people)
    return rows if rows and sum(r.event_type.startswith("person.") for r in rows) == people else None


async def _received(receiver: WebhookReceiver, n: int) -> bool:
    return len({r.document["id"] for r in receiver.received}) >= n


async def test_a_permanent_4xx_is_marked_failed_and_the_sink_moves_on(hooks, live_service) -> None:
    app, settings = hooks
    refused_gid = 41
    receiver = WebhookReceiver(lambda doc: 400 if doc["data"].get("global_id") == refused_gid else 200)
    await receiver.start()
    try:
        async with authed_channel(target(settings)) as channel:
            stub = sinks_pb2_grpc.SinkServiceStub(channel)
            environment_id = await register(app, live_service, "hooks-4xx")
            sink = await create_sink(stub, environment_id, receiver.url, event_types=["person.appeared"])
            person_events(app, environment_id, [refused_gid, 42, 43])
            await until(lambda: _received(receiver, 3), "the events after the refused one did not arrive")
            rows = await until(lambda: _all_finished(stub, sink.sink_id, 3), "deliveries not all finished")
            status = (await stub.GetSink(sinks_pb2.GetSinkRequest(sink_id=sink.sink_id), timeout=10)).status
            failed = await deliveries(stub, sink.sink_id, sinks_pb2.DELIVERY_STATE_FAILED)
    finally:
        await receiver.stop()
    assert [r.document["data"]["global_id"] for r in receiver.received] == [refused_gid, 42, 43]  # tried once
    assert [r.state for r in rows] == [
        sinks_pb2.DELIVERY_STATE_FAILED,
        sinks_pb2.DELIVERY_STATE_DELIVERED,
        sinks_pb2.DELIVERY_STATE_DELIVERED,
    ]
    assert len(failed) == 1 and failed[0].attempts == 1 and failed[0].last_error.startswith("HTTP 400")
    assert (status.failed, status.delivered, status.pending) == (1, 2, 0)
    assert status.last_error.startswith("HTTP 400") and status.HasField("last_delivered_at")


async def _all_finished(stub, sink_id: str, n: int) -> list[sinks_pb2.SinkDelivery] | None:
    rows = await deliveries(stub, sink_id)
    return rows if len(rows) == n and all(r.state != sinks_pb2.DELIVERY_STATE_PENDING for r in rows) else None


async def test_the_secret_never_appears_in_any_answer(hooks, live_service) -> None:
    app, settings = hooks
    async with authed_channel(target(settings)) as channel:
        stub = sinks_pb2_grpc.SinkServiceStub(channel)
        environment_id = await register(app, live_service, "hooks-secret")
        # A receiver that is never up: the deliveries stay pending with an error to show.
        url = WebhookReceiver().url
        created = await create_sink(stub, environment_id, url, name="secretive")
        person_events(app, environment_id, [7])
        await until(lambda: _pending_with_retries(stub, created.sink_id, minimum=1), "nothing queued")
        new_secret = "rotated-secret-" + uuid.uuid4().hex
        answers = [
            created,
            await stub.GetSink(sinks_pb2.GetSinkRequest(sink_id=created.sink_id), timeout=10),
            await stub.ListSinks(sinks_pb2.ListSinksRequest(environment_id=environment_id), timeout=10),
            await stub.ListSinks(sinks_pb2.ListSinksRequest(), timeout=10),
            await stub.UpdateSink(sinks_pb2.UpdateSinkRequest(sink_id=created.sink_id, secret=new_secret), timeout=10),
            await stub.ListSinkDeliveries(sinks_pb2.ListSinkDeliveriesRequest(sink_id=created.sink_id), timeout=10),
        ]
        await stub.UpdateSink(sinks_pb2.UpdateSinkRequest(sink_id=created.sink_id, enabled=False), timeout=10)
    for answer in answers:
        wire = answer.SerializeToString()
        for secret in (SECRET, new_secret):
            assert secret.encode() not in wire and secret not in str(answer)
    assert created.has_secret and answers[4].has_secret
    # Stored sealed too: the plain secret is nowhere in the sinks table.
    async with app.db.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT secret FROM sinks WHERE sink_id = $1", uuid.UUID(created.sink_id))
    assert stored and SECRET not in stored and new_secret not in stored


async def test_bad_input_gets_a_clear_status(hooks, live_service) -> None:
    app, settings = hooks
    async with authed_channel(target(settings)) as channel:
        stub = sinks_pb2_grpc.SinkServiceStub(channel)
        environment_id = await register(app, live_service, "hooks-bad")
        good = WebhookReceiver().url
        cases = [
            (
                {"url": "ftp://example.com/hook"},
                grpc.StatusCode.INVALID_ARGUMENT,
                "must start with http:// or https://",
            ),
            ({"url": "http://169.254.169.254/latest"}, grpc.StatusCode.INVALID_ARGUMENT, "link-local"),
            ({"url": f"http://127.0.0.1:{settings.grpc_port}/"}, grpc.StatusCode.INVALID_ARGUMENT, "own ports"),
            ({"url": "https://user:pw@example.com/"}, grpc.StatusCode.INVALID_ARGUMENT, "credentials"),
            ({"url": good, "event_types": ["person.teleported"]}, grpc.StatusCode.INVALID_ARGUMENT, "unknown event"),
            ({"url": good, "event_types": []}, grpc.StatusCode.INVALID_ARGUMENT, "event_types is required"),
            ({"url": good, "secret": "short"}, grpc.StatusCode.INVALID_ARGUMENT, "at least 16 characters"),
            ({"url": good, "environment_id": "no-such-env"}, grpc.StatusCode.NOT_FOUND, "no-such-env"),
        ]
        for fields, code, words in cases:
            env = fields.pop("environment_id", environment_id)
            url = fields.pop("url")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await create_sink(stub, env, url, **fields)
            assert err.value.code() == code and words in err.value.details(), (fields, err.value.details())
        await create_sink(stub, environment_id, good, name="taken")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create_sink(stub, environment_id, good, name="taken")
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        for request, code in (
            (sinks_pb2.GetSinkRequest(sink_id="not-a-uuid"), grpc.StatusCode.INVALID_ARGUMENT),
            (sinks_pb2.GetSinkRequest(sink_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetSink(request, timeout=10)
            assert err.value.code() == code
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListSinkDeliveries(
                sinks_pb2.ListSinkDeliveriesRequest(sink_id=str(uuid.uuid4()), page_token="garbage"), timeout=10
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_roles_and_environment_scope(hooks, live_service) -> None:
    app, settings = hooks
    async with authed_channel(target(settings)) as channel:
        stub = sinks_pb2_grpc.SinkServiceStub(channel)
        mine = await register(app, live_service, "hooks-scope-a")
        other = await register(app, live_service, "hooks-scope-b")
        sink = await create_sink(stub, other, WebhookReceiver().url, name="b-hook")
    operator = await make_key(target(settings), "operator", admin_key=settings.admin_api_key)
    viewer = await make_key(target(settings), "viewer", [mine], admin_key=settings.admin_api_key)
    async with authed_channel(target(settings), operator) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create_sink(sinks_pb2_grpc.SinkServiceStub(channel), mine, WebhookReceiver().url)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    async with authed_channel(target(settings), viewer) as channel:
        scoped = sinks_pb2_grpc.SinkServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await scoped.GetSink(sinks_pb2.GetSinkRequest(sink_id=sink.sink_id), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        listed = await scoped.ListSinks(sinks_pb2.ListSinksRequest(), timeout=10)
        assert all(s.environment_id == mine for s in listed.sinks)


async def test_pending_deliveries_past_the_bound_are_dropped_oldest_first_and_counted(hooks, live_service) -> None:
    app, settings = hooks
    async with authed_channel(target(settings)) as channel:
        stub = sinks_pb2_grpc.SinkServiceStub(channel)
        environment_id = await register(app, live_service, "hooks-bound")
        sink = await create_sink(stub, environment_id, WebhookReceiver().url, event_types=["person.appeared"])
        person_events(app, environment_id, [1, 2, 3, 4, 5])
        queued = await until(lambda: _pending_with_retries(stub, sink.sink_id, minimum=5), "not queued")
        # What the dispatcher does each pass with SPOTON_SINK_MAX_PENDING, here with a bound of 2.
        dropped = await SinkStore(app.db).bound_pending(2)
        rows = await deliveries(stub, sink.sink_id)
        status = (await stub.GetSink(sinks_pb2.GetSinkRequest(sink_id=sink.sink_id), timeout=10)).status
    assert dropped == {sink.sink_id: 3}
    assert [r.state for r in rows] == [sinks_pb2.DELIVERY_STATE_DROPPED] * 3 + [sinks_pb2.DELIVERY_STATE_PENDING] * 2
    assert [r.delivery_id for r in rows] == [q.delivery_id for q in queued]
    assert "SPOTON_SINK_MAX_PENDING" in rows[0].last_error
    assert (status.dropped, status.pending) == (3, 2)


async def test_deliveries_are_counted_in_the_metrics(hooks, live_service) -> None:
    app, settings = hooks
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        async with authed_channel(target(settings)) as channel:
            stub = sinks_pb2_grpc.SinkServiceStub(channel)
            environment_id = await register(app, live_service, "hooks-metrics")
            await create_sink(stub, environment_id, receiver.url, event_types=["person.left"])
            person_events(app, environment_id, [5, 6])
            await until(lambda: _received(receiver, 2), "the events did not arrive")
    finally:
        await receiver.stop()
    port = pick_free_port()
    server = start_metrics_server(LOOPBACK, port, app.writer, app.live, sinks=app.sink_stats)
    try:
        async with httpx.AsyncClient() as http:
            reply = await http.get(f"http://{LOOPBACK}:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(reply.text)
        for s in f.samples
    }
    delivered = samples[("spoton_sink_deliveries_total", (("kind", "webhook"), ("outcome", "delivered")))]
    assert delivered >= 2
    assert samples[("spoton_sink_delivery_seconds_count", (("kind", "webhook"),))] >= delivered
    assert ("spoton_sink_pending_deliveries", (("kind", "mqtt"),)) in samples
    assert ("spoton_sink_dropped_deliveries_total", ()) in samples
    assert app.sink_dispatcher.listening  # woken by NOTIFY, not only by the poll
    (health,) = [c for c in (await app.health()).components if c.name == "sinks"]
    assert health.status == "healthy" and "woken by NOTIFY" in health.detail and "delivered" in health.detail


async def test_a_sinks_file_is_applied_by_name_with_its_secret_from_a_file(hooks, live_service, tmp_path) -> None:
    app, _ = hooks
    environment_id = await register(app, live_service, "hooks-declared")
    secret_file = tmp_path / "webhook_secret"
    secret_file.write_text(SECRET + "\n")
    declared = {
        "environment_id": environment_id,
        "name": "declared",
        "kind": "webhook",
        "url": "https://hooks.example.com/declared",
        "event_types": ["zone.entered"],
        "secret_file": str(secret_file),
    }
    path = tmp_path / "sinks.json"
    path.write_text(json.dumps([declared, {**declared, "environment_id": "not-registered-yet"}]))
    assert await apply_sinks_path(path, app.sinks) == 1  # the unregistered environment's is skipped
    path.write_text(json.dumps({"sinks": [{**declared, "event_types": ["zone.exited"], "enabled": False}]}))
    assert await apply_sinks_path(path, app.sinks) == 1
    (record,) = await app.sinks.list(environment_id)
    assert (record.sink.name, record.sink.event_types, record.sink.enabled) == ("declared", {"zone.exited"}, False)
    assert record.has_secret
    path.write_text(json.dumps([{**declared, "url": "gopher://x"}]))
    with pytest.raises(ValueError, match=r"declared.*gopher"):
        await apply_sinks_path(path, app.sinks)
    path.write_text(json.dumps([{**declared, "colour": "red"}]))
    with pytest.raises(ValueError, match="colour"):
        await apply_sinks_path(path, app.sinks)


async def test_a_key_rotation_re_seals_sink_secrets(hooks, live_service) -> None:
    """SPOTON_SECRET_KEYS=new,old then a restart: start-up re-seals under the new key, so the
    old one can be dropped and the dispatcher still opens the secret."""
    app, settings = hooks
    async with authed_channel(target(settings)) as channel:
        environment_id = await register(app, live_service, "hooks-rotate")
        stub = sinks_pb2_grpc.SinkServiceStub(channel)
        sink = await create_sink(stub, environment_id, "https://hooks.example.com/rotate", name="rotated")
    old = settings.secret_keys[0]
    new = Fernet.generate_key().decode()
    rotated = SinkStore(Database(app.db.pool, SecretBox.from_keys([new, old])))
    assert await rotated.reseal() >= 1 and await rotated.reseal() == 0
    only_new = SinkStore(Database(app.db.pool, SecretBox.from_keys([new])))
    leased = await only_new.lease(sink.sink_id, "rotation-test", 1.0)
    assert leased is not None and leased.secret == SECRET
    await only_new.release(sink.sink_id, "rotation-test")
    # Back under the service's own key, for the tests after this one.
    back = SinkStore(Database(app.db.pool, SecretBox.from_keys([old, new])))
    assert await back.reseal() >= 1


async def test_one_replica_at_a_time_holds_a_sink(hooks, live_service) -> None:
    """The lease that keeps two replicas from sending one sink's deliveries at once."""
    app, settings = hooks
    async with authed_channel(target(settings)) as channel:
        environment_id = await register(app, live_service, "hooks-lease")
        stub = sinks_pb2_grpc.SinkServiceStub(channel)
        sink = await create_sink(stub, environment_id, "https://hooks.example.com/lease", name="leased")
    store = SinkStore(app.db)
    assert await store.lease(sink.sink_id, "replica-a", 30.0) is not None
    assert await store.lease(sink.sink_id, "replica-b", 30.0) is None  # held by a
    assert await store.lease(sink.sink_id, "replica-a", 30.0) is not None  # a renews
    await store.release(sink.sink_id, "replica-a")
    assert await store.lease(sink.sink_id, "replica-b", 0.001) is not None
    await asyncio.sleep(0.05)  # b's lease ran out (b died): a takes over
    assert await store.lease(sink.sink_id, "replica-a", 30.0) is not None
    await store.release(sink.sink_id, "replica-a")


async def test_a_failing_sink_does_not_slow_the_others(hooks, live_service) -> None:
    app, settings = hooks
    up = WebhookReceiver()
    await up.start()
    try:
        async with authed_channel(target(settings)) as channel:
            stub = sinks_pb2_grpc.SinkServiceStub(channel)
            environment_id = await register(app, live_service, "hooks-isolated")
            down = await create_sink(stub, environment_id, WebhookReceiver().url, name="down")
            await create_sink(stub, environment_id, up.url, name="up")
            person_events(app, environment_id, [1, 2, 3])
            await until(lambda: _received(up, 6), "the healthy sink's events did not all arrive")
            stuck = await until(lambda: _pending_with_retries(stub, down.sink_id, minimum=6), "down not retried")
            await stub.DeleteSink(sinks_pb2.DeleteSinkRequest(sink_id=down.sink_id), timeout=10)
    finally:
        await up.stop()
    assert [r.document["data"]["global_id"] for r in up.received] == [1, 1, 2, 2, 3, 3]
    # The down sink's head is retried, and its later events wait behind it, untried.
    assert len(stuck) == 6 and all(s.attempts == 0 for s in stuck[1:])
