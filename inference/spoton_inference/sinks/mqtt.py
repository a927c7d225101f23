"""MQTT deliverer: publishes each delivery's JSON body with QoS 1 and returns once the broker's
PUBACK arrived, so the outbox marks an event delivered only when the broker holds it.

Topics are ``<topic_prefix>/<environment_id>/<camera_id>/<event_type>``; events without a
camera (``task.state_changed``) go to ``<topic_prefix>/<environment_id>/_task/<event_type>``
(``_task`` cannot be a camera id: ids start with a letter or digit). Each id is one topic level,
percent-encoded where MQTT would read it otherwise (``/`` splits levels, ``+`` and ``#`` are
wildcards, a leading ``$`` marks broker topics), so a subscriber can filter on any level.

One long-lived connection per sink (keyed by sink id and URL) through aiomqtt, at most
``max_connections`` of them: past the cap the least recently used one is closed. A watcher
notices a connection the broker dropped and the next delivery opens a fresh one; a delivery
that finds its connection gone before anything was sent retries once at once on a new one.
No retained "current occupancy" topics: every message is one event, as on the webhook.

Bad credentials and "not authorised" (the broker's CONNACK) and a malformed URL are permanent
failures; everything else (broker down, network, timeouts) is transient and the outbox retries.
MQTT 3.1.1 is spoken, which every broker takes; its PUBACK cannot say a publish was refused by
an ACL (the broker acknowledges and drops it), so such sinks look delivered: grant the user
publish rights on its prefix.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import ssl
import uuid
from urllib.parse import unquote, urlsplit

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from spoton_inference.services.sinks import DeliveryFailed, Sink, SinkDelivery, SinkKind

SCHEMES = {"mqtt": False, "mqtts": True}  # scheme -> TLS
DEFAULT_PORTS = {False: 1883, True: 8883}
QOS_AT_LEAST_ONCE = 1
TASK_LEVEL = "_task"  # the camera level of events that have no camera
# Connections held at once across sinks; past it the least recently used one is closed.
DEFAULT_MAX_CONNECTIONS = 64
# Bound on connecting (TCP + CONNACK) and on waiting for one PUBACK.
DEFAULT_TIMEOUT_S = 10.0
KEEPALIVE_S = 30
CLIENT_ID_PREFIX = "spoton-"
CLIENT_ID_HEX = 16  # "spoton-" + 16 = 23 characters, MQTT 3.1.1's guaranteed client-id length
# CONNACK refusals that retrying cannot fix: MQTT 3.1.1's return codes 4 (bad user name or
# password) and 5 (not authorised), and the MQTT 5 reason codes paho maps them to.
REFUSED_CREDENTIALS = frozenset({4, 5, 0x86, 0x87})
# Characters percent-encoded inside one topic level, "%" itself included, so ids stay distinct.
_LEVEL_ESCAPES = {"%": "%25", "/": "%2F", "+": "%2B", "#": "%23", "\0": "%00"}

ConnectionKey = tuple[str, str]  # (sink id, URL)


@dataclasses.dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where a sink's broker is, parsed from ``mqtt://[user@]host[:port]`` (``mqtts://`` for TLS)."""

    host: str
    port: int
    tls: bool
    username: str | None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse a sink URL; a malformed one is a permanent failure (retrying cannot fix it)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise DeliveryFailed(f"bad MQTT URL: {exc}", permanent=True) from None
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise DeliveryFailed("an MQTT sink URL is mqtt://[user@]host[:port] or mqtts://...", permanent=True)
        tls = SCHEMES[parts.scheme]
        username = unquote(parts.username) if parts.username else None
        return cls(parts.hostname, port or DEFAULT_PORTS[tls], tls, username)


def topic_level(value: str) -> str:
    """One topic level holding ``value`` verbatim: no level separator, no wildcard, not a ``$`` topic."""
    level = "".join(_LEVEL_ESCAPES.get(ch, ch) for ch in value)
    return "%24" + level[1:] if level.startswith("$") else level


def topic_prefix(prefix: str) -> str:
    """The sink's prefix, which may span levels (``site/spoton``): wildcards encoded, no empty
    leading or trailing level, not a ``$`` topic."""
    levels = [topic_level(level) for level in prefix.strip("/").split("/") if level]
    return "/".join(levels)


def topic_for(sink: Sink, delivery: SinkDelivery) -> str:
    """``<prefix>/<environment>/<camera or _task>/<event type>``."""
    camera = topic_level(delivery.camera_id) if delivery.camera_id else TASK_LEVEL
    levels = [topic_prefix(sink.topic_prefix), topic_level(delivery.environment_id), camera]
    return "/".join([level for level in levels if level] + [topic_level(delivery.event_type)])


class _Connection:
    """One connected aiomqtt client and a watcher that notices when the broker drops it."""

    def __init__(self, client: aiomqtt.Client, stack: contextlib.AsyncExitStack, fingerprint: str) -> None:
        self.client = client
        self.fingerprint = fingerprint  # of the credentials it logged in with
        self.lost = asyncio.Event()
        self.in_flight = 0
        self._stack = stack
        self._watcher = asyncio.create_task(self._watch(), name="mqtt-sink-connection-watch")

    @classmethod
    async def open(cls, address: BrokerAddress, password: str, fingerprint: str, timeout_s: float) -> _Connection:
        client = aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=password or None,
            identifier=CLIENT_ID_PREFIX + uuid.uuid4().hex[:CLIENT_ID_HEX],
            protocol=aiomqtt.ProtocolVersion.V311,
            timeout=timeout_s,
            keepalive=KEEPALIVE_S,
            tls_context=ssl.create_default_context() if address.tls else None,
        )
        stack = contextlib.AsyncExitStack()
        try:
            await stack.enter_async_context(client)
        except aiomqtt.MqttCodeError as exc:
            code = getattr(exc.rc, "value", exc.rc)
            permanent = isinstance(exc, MqttConnectError) and code in REFUSED_CREDENTIALS
            raise DeliveryFailed(f"MQTT broker refused the connection: {exc}", permanent=permanent) from None
        except aiomqtt.MqttError as exc:
            raise DeliveryFailed(f"cannot connect to the MQTT broker: {exc}") from None
        return cls(client, stack, fingerprint)

    async def _watch(self) -> None:
        # Nothing is subscribed: the iterator only ends, with MqttError, when the connection does.
        with contextlib.suppress(aiomqtt.MqttError):
            async for _ in self.client.messages:
                pass
        self.lost.set()

    async def publish(self, topic: str, body: bytes, timeout_s: float) -> None:
        """Publish with QoS 1 and wait for the PUBACK, or fail as soon as the connection is lost."""
        publishing = asyncio.create_task(
            self.client.publish(topic, body, qos=QOS_AT_LEAST_ONCE, timeout=timeout_s), name="mqtt-sink-publish"
        )
        lost = asyncio.create_task(self.lost.wait(), name="mqtt-sink-lost")
        try:
            await asyncio.wait((publishing, lost), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            publishing.cancel()
            raise
        finally:
            lost.cancel()
        if not publishing.done():
            publishing.cancel()
            await asyncio.wait((publishing,))
            raise _Lost("the MQTT connection was lost before the PUBACK arrived")
        publishing.result()  # the publish's own error, if any

    async def close(self) -> None:
        self._watcher.cancel()
        await asyncio.wait((self._watcher,))
        with contextlib.suppress(aiomqtt.MqttError, OSError):
            await self._stack.aclose()  # DISCONNECT, unless the broker is gone already
        self.lost.set()  # a publish still waiting for its PUBACK on it fails at once


class _Lost(Exception):
    """The connection went away while a publish waited for its PUBACK."""


def _fingerprint(address: BrokerAddress, secret: str) -> str:
    return hashlib.sha256(f"{address.username}\0{secret}".encode()).hexdigest()


class MqttDeliverer:
    """The ``Deliverer`` of ``SinkKind.MQTT`` sinks (see the module docstring)."""

    def __init__(self, *, max_connections: int = DEFAULT_MAX_CONNECTIONS, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        self._max_connections = max_connections
        self._timeout_s = timeout_s
        # Least recently used first. A task, so concurrent deliveries to one sink share one connect.
        self._connections: collections.OrderedDict[ConnectionKey, asyncio.Task[_Connection]] = collections.OrderedDict()

    @property
    def connection_count(self) -> int:
        """Connections held or being opened now."""
        return len(self._connections)

    async def deliver(self, sink: Sink, delivery: SinkDelivery) -> None:
        if sink.kind is not SinkKind.MQTT:
            raise DeliveryFailed(f"not an MQTT sink: {sink.kind}", permanent=True)
        address = BrokerAddress.parse(sink.url)
        if sink.secret and not address.username:
            raise DeliveryFailed("an MQTT password needs a user: mqtt://user@host:port", permanent=True)
        topic = topic_for(sink, delivery)
        key = (sink.sink_id, sink.url)
        fingerprint = _fingerprint(address, sink.secret)
        for attempt in range(2):
            connection = await self._connection(key, address, sink.secret, fingerprint)
            fresh = attempt == 1
            connection.in_flight += 1
            try:
                await connection.publish(topic, delivery.body, self._timeout_s)
                return
            except aiomqtt.MqttCodeError as exc:
                # Refused before anything was sent: the connection was already gone. Once more on a new one.
                await self._discard(key, connection)
                if fresh:
                    raise DeliveryFailed(f"MQTT publish failed: {exc}") from None
            except ValueError as exc:  # paho's own checks: a payload over MQTT's size limit
                raise DeliveryFailed(f"MQTT cannot carry this message: {exc}", permanent=True) from None
            except (aiomqtt.MqttError, _Lost) as exc:
                await self._discard(key, connection)
                raise DeliveryFailed(f"MQTT publish not acknowledged: {exc}") from None
            finally:
                connection.in_flight -= 1

    async def close(self) -> None:
        """Disconnect every connection; a later delivery connects again."""
        entries, self._connections = list(self._connections.values()), collections.OrderedDict()
        for entry in entries:
            await _close_entry(entry)

    async def _connection(
        self, key: ConnectionKey, address: BrokerAddress, password: str, fingerprint: str
    ) -> _Connection:
        # The map changes only between awaits (no await below until it is consistent), so
        # concurrent deliveries never open two connections for one sink nor lose track of one.
        retired: list[asyncio.Task[_Connection]] = []
        entry = self._connections.get(key)
        held = _ready(entry)
        if held is not None and (held.lost.is_set() or held.fingerprint != fingerprint):
            retired.append(self._connections.pop(key))
            entry = None
        if entry is None:
            while len(self._connections) >= self._max_connections:  # idle ones first, least recently used first
                victim = next((k for k, e in self._connections.items() if _idle(e)), next(iter(self._connections)))
                retired.append(self._connections.pop(victim))
            entry = asyncio.create_task(
                _Connection.open(address, password, fingerprint, self._timeout_s), name="mqtt-sink-connect"
            )
            self._connections[key] = entry
        self._connections.move_to_end(key)
        for old in retired:
            await _close_entry(old)
        try:
            return await asyncio.shield(entry)
        except DeliveryFailed:
            if self._connections.get(key) is entry:
                del self._connections[key]
            raise
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if entry.cancelled() and current is not None and not current.cancelling():
                # Closed (evicted, or close()) while it was opening: not this caller's cancellation.
                raise DeliveryFailed("the MQTT connection was closed while it was opening") from None
            raise

    async def _discard(self, key: ConnectionKey, connection: _Connection) -> None:
        if _ready(self._connections.get(key)) is connection:
            del self._connections[key]
        await connection.close()


def _ready(entry: asyncio.Task[_Connection] | None) -> _Connection | None:
    """The connection of an entry whose connect succeeded; None while connecting or after it failed."""
    if entry is None or not entry.done() or entry.cancelled() or entry.exception() is not None:
        return None
    return entry.result()


def _idle(entry: asyncio.Task[_Connection]) -> bool:
    connection = _ready(entry)
    return connection is not None and connection.in_flight == 0


async def _close_entry(entry: asyncio.Task[_Connection]) -> None:
    if not entry.done():
        entry.cancel()
        await asyncio.wait((entry,))
    connection = _ready(entry)
    if connection is not None:
        await connection.close()
