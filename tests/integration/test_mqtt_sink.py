"""End to end over MQTT: an MQTT sink created through the gRPC API on an environment, a real task
over a generated scene with people and a zone, and a subscriber on Debian's real mosquitto that
receives every event the task stored (people appearing and leaving, zone entries and exits, the
task's state changes) on ``<prefix>/<environment>/<camera or _task>/<event type>``, in order."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
from typing import Any

import aiomqtt
import pytest
from support.auth import ADMIN_API_KEY, authed_channel
from support.mosquitto import Mosquitto, mosquitto_fixture  # noqa: F401 (the ``mosquitto`` fixture)
from support.services import serving

from spoton.v1 import sinks_pb2, sinks_pb2_grpc
from spoton_inference.domain.events import StatusUpdate
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate
from spoton_inference.services.sinks import EVENT_TYPES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
WEST = [(0.0, 0.0), (7.0, 0.0), (7.0, 9.0), (0.0, 9.0)]  # the west half of the demo hall
PREFIX = "site-a/spoton"
# The events table's kinds and the event types they go out as.
KIND_TYPES = {
    "appear": "person.appeared",
    "leave": "person.left",
    "handover": "person.handover",
    "zone_enter": "zone.entered",
    "zone_exit": "zone.exited",
}
DRAIN_TIMEOUT_S = 120.0
POLL_S = 0.2


async def _collect(broker: Mosquitto, topic: str, into: list[aiomqtt.Message], ready: asyncio.Event) -> None:
    async with aiomqtt.Client(broker.host, broker.port, username=broker.user, password=broker.password) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            into.append(message)


async def test_an_mqtt_subscriber_sees_the_events_of_a_task(service_settings, make_data_dir, mosquitto) -> None:
    settings = await service_settings(
        "spoton_mqtt_sink",
        sink_allowed_hosts=("127.0.0.1",),  # the test broker listens on loopback
        sink_poll_interval_s=POLL_S,
        sink_retry_initial_s=0.1,
        sink_retry_max_s=0.5,
    )
    async with serving(settings) as app:
        config = dataclasses.replace(demo_config(seed=3), frames_per_batch=30, n_batches=1, n_people=4)
        env = await app.catalog.register_directory(str(generate(config, make_data_dir("mqtt-sink") / "hall")))
        env_id = env.environment_id
        await app.analytics.create_zone(env_id, zone_id="west", name="West", polygon=WEST)
        target = f"{settings.grpc_host}:{settings.grpc_port}"

        received: list[aiomqtt.Message] = []
        ready = asyncio.Event()
        subscriber = asyncio.create_task(_collect(mosquitto, f"{PREFIX}/{env_id}/#", received, ready))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            async with authed_channel(target, ADMIN_API_KEY) as channel:
                stub = sinks_pb2_grpc.SinkServiceStub(channel)
                sink = await stub.CreateSink(
                    sinks_pb2.CreateSinkRequest(
                        environment_id=env_id,
                        name="building-automation",
                        kind=sinks_pb2.SINK_KIND_MQTT,
                        url=mosquitto.url,
                        event_types=list(EVENT_TYPES),
                        secret=mosquitto.password,
                        topic_prefix=PREFIX,
                    )
                )
                assert sink.has_secret and sink.kind == sinks_pb2.SINK_KIND_MQTT and sink.topic_prefix == PREFIX

                record = await app.tasks.start(env_id, [])
                async for event in app.tasks.watch(record.task_id, 0):
                    if isinstance(event.payload, StatusUpdate) and event.payload.state.is_final:
                        assert event.payload.state.value == "completed", event.payload.error
                        break
                await app.history.flush()

                # Every stored event goes out: wait until the outbox is drained and all arrived.
                async with asyncio.timeout(DRAIN_TIMEOUT_S):
                    while True:
                        status = (await stub.GetSink(sinks_pb2.GetSinkRequest(sink_id=sink.sink_id))).status
                        if status.pending == 0 and status.delivered and len(received) >= status.delivered:
                            break
                        await asyncio.sleep(POLL_S)
                assert status.failed == 0 and status.dropped == 0, status
        finally:
            subscriber.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await subscriber

        async with app.db.pool.acquire() as conn:
            rows = await conn.fetch("SELECT kind, camera_id FROM events WHERE task_id = $1", record.task_id)

    bodies = [_checked(message, env_id, record.task_id, {c.camera_id for c in env.cameras}) for message in received]
    ids = [body["id"] for body in bodies]
    assert len(ids) == status.delivered and ids == sorted(set(ids)), "each event once, in the outbox's order"

    by_type = collections.Counter(body["type"] for body in bodies)
    stored = collections.Counter(KIND_TYPES[row["kind"]] for row in rows if row["kind"] in KIND_TYPES)
    assert {"person.appeared", "person.left", "zone.entered", "zone.exited"} <= set(stored), stored
    assert {t: n for t, n in by_type.items() if t != "task.state_changed"} == dict(stored)

    states = [body["data"]["state"] for body in bodies if body["type"] == "task.state_changed"]
    assert states[0] == "queued" and states[-1] == "completed", states
    zone = next(body for body in bodies if body["type"] == "zone.entered")
    assert zone["data"]["zone_id"] == "west" and isinstance(zone["data"]["global_id"], int)


def _checked(message: aiomqtt.Message, env_id: str, task_id: str, cameras: set[str]) -> dict[str, Any]:
    """The message's JSON body, once its topic and fields agree with each other."""
    assert message.qos == 1
    body = json.loads(message.payload)  # type: ignore[arg-type]
    prefix_a, prefix_b, environment, camera, event_type = message.topic.value.split("/")
    assert f"{prefix_a}/{prefix_b}" == PREFIX and environment == env_id
    assert body["type"] == event_type and body["environment_id"] == env_id and body["task_id"] == task_id
    if event_type == "task.state_changed":
        assert camera == "_task" and body["camera_id"] is None
    else:
        assert camera in cameras and body["camera_id"] == camera
    return body
