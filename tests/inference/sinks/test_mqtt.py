"""The MQTT deliverer against Debian's real mosquitto: the body arrives on the right topic with
QoS 1, refused credentials are permanent, a broker restart between deliveries is ridden out."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator

import aiomqtt
import pytest
from support.mosquitto import Mosquitto, mosquitto_fixture  # noqa: F401 (the ``mosquitto`` fixture)

from spoton_inference.services.sinks import DeliveryFailed, Sink, SinkDelivery, SinkKind
from spoton_inference.sinks.mqtt import MqttDeliverer, topic_for, topic_level, topic_prefix

RECEIVE_TIMEOUT_S = 10.0


def _sink(broker: Mosquitto, *, secret: str | None = None, prefix: str = "spoton", sink_id: str = "s1") -> Sink:
    return Sink(
        sink_id=sink_id,
        environment_id="env-1",
        name="broker",
        kind=SinkKind.MQTT,
        url=broker.url,
        topic_prefix=prefix,
        event_types=frozenset({"person.appeared", "task.state_changed"}),
        secret=broker.password if secret is None else secret,
        enabled=True,
    )


def _delivery(delivery_id: int, *, camera_id: str = "c1", event_type: str = "person.appeared") -> SinkDelivery:
    body = {"id": delivery_id, "type": event_type, "environment_id": "env-1", "camera_id": camera_id or None}
    return SinkDelivery(
        delivery_id=delivery_id,
        sink_id="s1",
        environment_id="env-1",
        camera_id=camera_id,
        event_type=event_type,
        occurred_at=dt.datetime.now(dt.UTC),
        task_id="t1",
        body=json.dumps(body).encode(),
        attempts=0,
    )


async def _subscriber(broker: Mosquitto, topic: str = "#") -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(broker.host, broker.port, username=broker.user, password=broker.password) as client:
        await client.subscribe(topic, qos=1)
        yield client


async def _next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(RECEIVE_TIMEOUT_S):
        return await anext(aiter(client.messages))


def test_topics_keep_each_id_in_one_level() -> None:
    assert topic_level("a/b+c#d") == "a%2Fb%2Bc%23d"
    assert topic_level("100%") == "100%25"
    assert topic_level("$SYS") == "%24SYS"
    assert topic_prefix("/site/spoton/") == "site/spoton"
    assert topic_prefix("$share/x") == "%24share/x"


async def test_a_delivery_arrives_on_its_topic(mosquitto: Mosquitto) -> None:
    deliverer = MqttDeliverer()
    try:
        async for subscriber in _subscriber(mosquitto):
            delivery = _delivery(7)
            await deliverer.deliver(_sink(mosquitto), delivery)
            message = await _next_message(subscriber)
            assert message.topic.value == "spoton/env-1/c1/person.appeared"
            assert message.payload == delivery.body
            assert message.qos == 1

            task_event = _delivery(8, camera_id="", event_type="task.state_changed")
            await deliverer.deliver(_sink(mosquitto, prefix="site/a"), task_event)
            message = await _next_message(subscriber)
            assert message.topic.value == "site/a/env-1/_task/task.state_changed"
            assert topic_for(_sink(mosquitto, prefix="site/a"), task_event) == message.topic.value
            assert message.payload == task_event.body
        assert deliverer.connection_count == 1  # one sink, one long-lived connection
    finally:
        await deliverer.close()
    assert deliverer.connection_count == 0


async def test_a_wrong_password_is_a_permanent_failure(mosquitto: Mosquitto) -> None:
    deliverer = MqttDeliverer()
    try:
        with pytest.raises(DeliveryFailed) as failed:
            await deliverer.deliver(_sink(mosquitto, secret="not-the-password"), _delivery(1))
        assert failed.value.permanent
        assert deliverer.connection_count == 0
    finally:
        await deliverer.close()


async def test_an_unreachable_broker_is_a_transient_failure(mosquitto: Mosquitto) -> None:
    await mosquitto.stop()
    deliverer = MqttDeliverer(timeout_s=2)
    try:
        with pytest.raises(DeliveryFailed) as failed:
            await deliverer.deliver(_sink(mosquitto), _delivery(1))
        assert not failed.value.permanent
    finally:
        await deliverer.close()


async def test_a_broker_restart_between_deliveries_is_survived(mosquitto: Mosquitto) -> None:
    deliverer = MqttDeliverer()
    sink = _sink(mosquitto)
    try:
        await deliverer.deliver(sink, _delivery(1))
        await mosquitto.restart()  # the held connection is dropped
        async for subscriber in _subscriber(mosquitto):
            await deliverer.deliver(sink, _delivery(2))
            message = await _next_message(subscriber)
            assert json.loads(message.payload)["id"] == 2  # type: ignore[arg-type]
    finally:
        await deliverer.close()


async def test_connections_are_capped(mosquitto: Mosquitto) -> None:
    deliverer = MqttDeliverer(max_connections=2)
    try:
        async for subscriber in _subscriber(mosquitto):
            for n, sink_id in enumerate(("a", "b", "c"), start=1):
                await deliverer.deliver(_sink(mosquitto, sink_id=sink_id), _delivery(n))
                assert json.loads((await _next_message(subscriber)).payload)["id"] == n  # type: ignore[arg-type]
            assert deliverer.connection_count == 2
    finally:
        await deliverer.close()


async def test_a_hung_broker_fails_the_delivery_in_time_and_the_next_one_reconnects(mosquitto: Mosquitto) -> None:
    deliverer = MqttDeliverer(timeout_s=1)
    sink = _sink(mosquitto)
    try:
        await deliverer.deliver(sink, _delivery(1))
        mosquitto.pause()
        try:
            async with asyncio.timeout(5):  # the deliverer's own bound ends it, not this one
                with pytest.raises(DeliveryFailed) as failed:
                    await deliverer.deliver(sink, _delivery(2))
            assert not failed.value.permanent
        finally:
            mosquitto.resume()
        async for subscriber in _subscriber(mosquitto):
            await deliverer.deliver(sink, _delivery(3))
            assert json.loads((await _next_message(subscriber)).payload)["id"] == 3  # type: ignore[arg-type]
    finally:
        await deliverer.close()


async def test_concurrent_deliveries_to_one_sink_share_one_connection(mosquitto: Mosquitto) -> None:
    deliverer = MqttDeliverer()
    count = 20
    try:
        async for subscriber in _subscriber(mosquitto):
            await asyncio.gather(*(deliverer.deliver(_sink(mosquitto), _delivery(n)) for n in range(count)))
            assert deliverer.connection_count == 1
            ids = {json.loads((await _next_message(subscriber)).payload)["id"] for _ in range(count)}  # type: ignore[arg-type]
            assert ids == set(range(count))
    finally:
        await deliverer.close()


async def test_a_changed_secret_logs_in_again_with_it(mosquitto: Mosquitto) -> None:
    deliverer = MqttDeliverer()
    try:
        await deliverer.deliver(_sink(mosquitto), _delivery(1))
        with pytest.raises(DeliveryFailed) as failed:  # not published on the connection of the old secret
            await deliverer.deliver(_sink(mosquitto, secret="changed-by-an-operator"), _delivery(2))
        assert failed.value.permanent
    finally:
        await deliverer.close()
