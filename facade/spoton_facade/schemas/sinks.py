"""The REST contract of event sinks (``spoton.v1.SinkService``); field names follow sinks.proto.

No shape here has a ``secret`` to answer: it is accepted in request bodies only.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from spoton_facade.contract import Name, Text

SinkKindName = Literal["webhook", "mqtt"]
EventType = Literal[
    "person.appeared", "person.left", "person.handover", "zone.entered", "zone.exited", "task.state_changed"
]
DeliveryStateName = Literal["pending", "delivered", "failed", "dropped"]
# The service's bounds (services/sink_policy.py, services/sink_service.py).
# http(s):// for webhooks, mqtt(s):// for MQTT; which one fits the kind, and where the host may
# be, the service checks.
Url = Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^(https?|mqtts?)://[^\x00]+$")]
EventTypes = Annotated[list[EventType], msgspec.Meta(min_length=1)]
Secret = Annotated[str, msgspec.Meta(max_length=1024, pattern=r"^[^\x00]*$")]


class SinkStatus(msgspec.Struct):
    """``spoton.v1.SinkStatus``: totals since the sink was created, pending counted now."""

    pending: int
    delivered: int
    failed: int
    dropped: int
    last_error: str
    last_error_at: dt.datetime | None
    last_delivered_at: dt.datetime | None


class Sink(msgspec.Struct):
    """``spoton.v1.Sink``: ``has_secret`` says whether a secret is set; the secret is never answered."""

    sink_id: str
    environment_id: str
    name: str
    kind: str
    url: str
    topic_prefix: str
    event_types: list[str]
    enabled: bool
    has_secret: bool
    status: SinkStatus
    created_at: dt.datetime | None
    updated_at: dt.datetime | None


class SinkList(msgspec.Struct):
    """``spoton.v1.ListSinksResponse``."""

    sinks: list[Sink]


class SinkBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /environments/{environment_id}/sinks``. ``secret``: the webhook's HMAC key (16+
    characters, required) or the MQTT password; write-only. ``topic_prefix``: MQTT only."""

    name: Name
    kind: SinkKindName
    url: Url
    event_types: EventTypes
    secret: Secret = ""
    topic_prefix: Text = ""
    enabled: bool = True


class SinkPatchBody(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /sinks/{sink_id}``: absent fields stay as they are; ``event_types`` replaces the list."""

    name: Name | None = None
    url: Url | None = None
    event_types: EventTypes | None = None
    secret: Secret | None = None
    topic_prefix: Text | None = None
    enabled: bool | None = None


class SinkDelivery(msgspec.Struct):
    """``spoton.v1.SinkDelivery``: one event for one sink."""

    delivery_id: int
    sink_id: str
    event_type: str
    camera_id: str
    task_id: str
    occurred_at: dt.datetime | None
    state: str
    attempts: int
    last_error: str
    created_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    finished_at: dt.datetime | None


class SinkDeliveryPage(msgspec.Struct):
    """``spoton.v1.ListSinkDeliveriesResponse``."""

    deliveries: list[SinkDelivery]
    next_page_token: str
