"""Event sinks: where SpotOn pushes person, zone and task events (webhooks, MQTT).

This module is the contract between the outbox dispatcher and the deliverers: a ``Sink`` is
configured per environment, a ``SinkDelivery`` is one event for one sink taken from the
durable outbox, and a ``Deliverer`` sends one delivery and returns only once the receiver
acknowledged it (or raises ``DeliveryFailed``). Deliverers are picked by ``SinkKind`` from a
registry the composition root builds, so the dispatcher knows no transport.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping
from typing import Protocol

DEFAULT_TOPIC_PREFIX = "spoton"


class SinkKind(enum.StrEnum):
    """The transport a sink delivers over."""

    WEBHOOK = "webhook"
    MQTT = "mqtt"


EVENT_TYPES = (
    "person.appeared",
    "person.left",
    "person.handover",
    "zone.entered",
    "zone.exited",
    "task.state_changed",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Sink:
    """A sink as configured; the secret is write-only: no API ever returns it."""

    sink_id: str
    environment_id: str
    name: str
    kind: SinkKind
    url: str  # webhook: https?://...; mqtt: mqtt://[user@]host:port (mqtts:// for TLS)
    topic_prefix: str  # mqtt only, default "spoton"
    event_types: frozenset[str]
    secret: str
    enabled: bool


@dataclasses.dataclass(frozen=True, slots=True)
class SinkDelivery:
    """One event for one sink, from the durable outbox; ``body`` is the JSON document sent."""

    delivery_id: int
    sink_id: str
    environment_id: str
    camera_id: str  # "" when none (task events)
    event_type: str
    occurred_at: dt.datetime
    task_id: str
    body: bytes
    attempts: int


class DeliveryFailed(Exception):
    """A delivery did not go through; ``permanent`` ones are not retried (the sink moves on)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Deliverer(Protocol):
    """Sends deliveries of one ``SinkKind``."""

    async def deliver(self, sink: Sink, delivery: SinkDelivery) -> None:
        """Send one delivery; return once the receiver acknowledged it, else raise ``DeliveryFailed``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class DeliveryState(enum.StrEnum):
    """Where an outbox row stands."""

    PENDING = "pending"  # not yet acknowledged; retried until it is, fails or is dropped
    DELIVERED = "delivered"
    FAILED = "failed"  # refused for good by the receiver (its reason kept); the sink moved on
    DROPPED = "dropped"  # pushed out by SPOTON_SINK_MAX_PENDING newer ones (counted)


@dataclasses.dataclass(frozen=True, slots=True)
class SinkStatus:
    """How a sink's deliveries stand: totals since it was created, and the newest outcome."""

    pending: int = 0
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    last_error: str = ""
    last_error_at: dt.datetime | None = None
    last_delivered_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SinkRecord:
    """A stored sink as the API shows it: ``sink.secret`` is always "" here (only the
    dispatcher opens the sealed secret); ``has_secret`` says whether one is set."""

    sink: Sink
    has_secret: bool
    status: SinkStatus
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One outbox row as ListSinkDeliveries shows it."""

    delivery_id: int
    sink_id: str
    event_type: str
    camera_id: str
    task_id: str
    occurred_at: dt.datetime
    state: DeliveryState
    attempts: int
    last_error: str
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    finished_at: dt.datetime | None


def encode_body(
    delivery_id: int,
    event_type: str,
    environment_id: str,
    camera_id: str,
    task_id: str,
    occurred_at: dt.datetime,
    data: Mapping[str, object],
) -> bytes:
    """The JSON document a delivery sends: the same bytes on every attempt and every transport.

    >>> at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    >>> encode_body(7, "person.left", "hall", "", "t1", at, {"global_id": 3})
    b'{"id":7,"type":"person.left","environment_id":"hall","camera_id":null,"task_id":"t1","occurred_at":"2026-01-02T03:04:05Z","data":{"global_id":3}}'
    """
    document = {
        "id": delivery_id,
        "type": event_type,
        "environment_id": environment_id,
        "camera_id": camera_id or None,
        "task_id": task_id,
        "occurred_at": occurred_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": dict(data),
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=False).encode()
