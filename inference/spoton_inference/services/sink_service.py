"""Event sinks' use cases: create, list, read, change and delete sinks, and read their deliveries.

Checks every input before anything is stored (URL form and target, event types, secret),
scopes every path by environment (domain/scoping.py: a sink of an environment out of the
caller's scope answers NotFound, like a missing one), records changes in the audit log, and
never returns a secret: records carry ``has_secret`` only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from spoton_inference.domain.errors import InvalidArgument, NotFound
from spoton_inference.domain.scoping import require_creatable, require_visible, scope
from spoton_inference.services.audit import Audit, AuditAction, run_audited
from spoton_inference.services.catalog import Catalog
from spoton_inference.services.request_args import decode_id_token, encode_id_token, parse_uuid
from spoton_inference.services.sink_policy import SinkPolicy
from spoton_inference.services.sinks import (
    DEFAULT_TOPIC_PREFIX,
    EVENT_TYPES,
    DeliveryRecord,
    DeliveryState,
    Sink,
    SinkKind,
    SinkRecord,
)

# An HMAC key a receiver could guess signs nothing: webhooks need at least this many characters.
MIN_WEBHOOK_SECRET_CHARS = 16
MAX_SECRET_CHARS = 1024
MAX_NAME_CHARS = 100
MAX_TOPIC_PREFIX_CHARS = 200
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000


# Tags the page tokens of ListSinkDeliveries (the tokens of other listings are refused).
DELIVERIES_TOKEN = "d"


@dataclasses.dataclass(frozen=True, slots=True)
class NewSink:
    """What a caller gives to create a sink (or what SPOTON_SINKS_PATH declares)."""

    environment_id: str
    name: str
    kind: SinkKind | str
    url: str
    event_types: Sequence[str]
    secret: str = ""
    topic_prefix: str = ""
    enabled: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class SinkPatch:
    """Changes to a sink; None leaves a field as it is. ``secret`` "" removes an MQTT password."""

    name: str | None = None
    url: str | None = None
    event_types: Sequence[str] | None = None
    secret: str | None = None
    topic_prefix: str | None = None
    enabled: bool | None = None


class SinkRecords(Protocol):
    """Sinks and their deliveries as stored (storage/sink_store.SinkStore)."""

    async def insert(self, sink: Sink) -> SinkRecord: ...
    async def get(self, sink_id: str) -> SinkRecord | None: ...
    async def by_name(self, environment_id: str, name: str) -> SinkRecord | None: ...
    async def list(self, environment_ids: frozenset[str] | None, environment_id: str = "") -> list[SinkRecord]: ...
    async def update(self, sink_id: str, changes: Mapping[str, object]) -> SinkRecord | None: ...
    async def delete(self, sink_id: str) -> bool: ...
    async def deliveries(
        self, sink_id: str, state: DeliveryState | None, before_id: int | None, limit: int
    ) -> list[DeliveryRecord]: ...


class SinkService:
    def __init__(self, store: SinkRecords, catalog: Catalog, policy: SinkPolicy, audit: Audit | None = None) -> None:
        self._store = store
        self._catalog = catalog
        self._policy = policy
        self._audit = audit

    async def create(self, new: NewSink) -> SinkRecord:
        require_creatable(new.environment_id, "sinks")
        self._catalog.get(new.environment_id)  # NotFound naming the known environments
        sink = await self._validated(new, str(uuid.uuid4()))
        return await run_audited(
            self._audit, AuditAction.SINK_CREATE, self._store.insert(sink), f"{new.environment_id}/{new.name}", _target
        )

    async def upsert(self, new: NewSink) -> SinkRecord:
        """Create the sink, or replace the one of that name in its environment (SPOTON_SINKS_PATH)."""
        existing = await self._store.by_name(new.environment_id, new.name)
        if existing is None:
            return await self.create(new)
        sink = await self._validated(new, existing.sink.sink_id)
        changes = {
            "url": sink.url,
            "topic_prefix": sink.topic_prefix,
            "event_types": sink.event_types,
            "secret": sink.secret,
            "enabled": sink.enabled,
        }
        updated = await run_audited(
            self._audit, AuditAction.SINK_UPDATE, self._store.update(sink.sink_id, changes), _target(existing)
        )
        if updated is None:
            raise NotFound(f"sink {sink.sink_id} not found")
        return updated

    async def list(self, environment_id: str) -> list[SinkRecord]:
        """The sinks of ``environment_id`` ("" = every environment the caller sees)."""
        if environment_id:
            self._catalog.get(environment_id)
        return await self._store.list(scope(), environment_id)

    async def get(self, sink_id: str) -> SinkRecord:
        sink_id = parse_uuid(sink_id, "sink id")
        record = await self._store.get(sink_id)
        missing = f"sink {sink_id} not found"
        if record is None:
            raise NotFound(missing)
        require_visible(record.sink.environment_id, missing)
        return record

    async def update(self, sink_id: str, patch: SinkPatch) -> SinkRecord:
        current = await self.get(sink_id)
        sink = current.sink
        changes: dict[str, object] = {}
        if patch.name is not None:
            changes["name"] = _name(patch.name)
        if patch.url is not None:
            changes["url"] = await self._url(sink.kind, patch.url)
        if patch.event_types is not None:
            changes["event_types"] = event_types(patch.event_types)
        if patch.secret is not None:
            changes["secret"] = _secret(sink.kind, patch.secret)
        if patch.topic_prefix is not None:
            changes["topic_prefix"] = _topic_prefix(sink.kind, patch.topic_prefix)
        if patch.enabled is not None:
            changes["enabled"] = patch.enabled
        updated = await run_audited(
            self._audit, AuditAction.SINK_UPDATE, self._store.update(sink.sink_id, changes), _target(current)
        )
        if updated is None:
            raise NotFound(f"sink {sink.sink_id} not found")
        return updated

    async def delete(self, sink_id: str) -> None:
        current = await self.get(sink_id)
        deletion = self._store.delete(current.sink.sink_id)
        deleted = await run_audited(self._audit, AuditAction.SINK_DELETE, deletion, _target(current))
        if not deleted:
            raise NotFound(f"sink {current.sink.sink_id} not found")

    async def deliveries(
        self, sink_id: str, state: DeliveryState | None, page_size: int, page_token: str
    ) -> tuple[list[DeliveryRecord], str]:
        """A page of the sink's deliveries, newest first, and the next page's token ('' at the end)."""
        record = await self.get(sink_id)
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        before = decode_id_token(DELIVERIES_TOKEN, page_token) if page_token else None
        rows = await self._store.deliveries(record.sink.sink_id, state, before, size + 1)
        if len(rows) > size:
            return rows[:size], encode_id_token(DELIVERIES_TOKEN, rows[size - 1].delivery_id)
        return rows, ""

    async def _validated(self, new: NewSink, sink_id: str) -> Sink:
        kind = _kind(new.kind)
        return Sink(
            sink_id=sink_id,
            environment_id=new.environment_id,
            name=_name(new.name),
            kind=kind,
            url=await self._url(kind, new.url),
            topic_prefix=_topic_prefix(kind, new.topic_prefix),
            event_types=event_types(new.event_types),
            secret=_secret(kind, new.secret),
            enabled=new.enabled,
        )

    async def _url(self, kind: SinkKind, url: str) -> str:
        url = self._policy.check_form(kind, url)
        await asyncio.to_thread(self._policy.check_target, kind, url)
        return url


def event_types(values: Iterable[str]) -> frozenset[str]:
    """The event types named, each one known; at least one."""
    chosen = frozenset(v.strip() for v in values)
    unknown = sorted(chosen - set(EVENT_TYPES))
    if unknown:
        raise InvalidArgument(f"unknown event types {unknown}: choose among {list(EVENT_TYPES)}")
    if not chosen:
        raise InvalidArgument(f"event_types is required: one or more of {list(EVENT_TYPES)}")
    return chosen


def _kind(value: SinkKind | str) -> SinkKind:
    try:
        return SinkKind(value)
    except ValueError:
        raise InvalidArgument(f"kind must be one of {[k.value for k in SinkKind]}, got {value!r}") from None


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"name is required: 1 to {MAX_NAME_CHARS} characters")
    return name


def _secret(kind: SinkKind, secret: str) -> str:
    if len(secret) > MAX_SECRET_CHARS:
        raise InvalidArgument(f"secret is longer than {MAX_SECRET_CHARS} characters")
    if kind is SinkKind.WEBHOOK and len(secret) < MIN_WEBHOOK_SECRET_CHARS:
        raise InvalidArgument(
            f"a webhook sink needs a secret of at least {MIN_WEBHOOK_SECRET_CHARS} characters: "
            "every POST is signed with it (X-SpotOn-Signature)"
        )
    return secret


def _topic_prefix(kind: SinkKind, prefix: str) -> str:
    prefix = prefix.strip()
    if kind is not SinkKind.MQTT:
        if prefix:
            raise InvalidArgument("topic_prefix is for MQTT sinks only")
        return DEFAULT_TOPIC_PREFIX
    prefix = prefix or DEFAULT_TOPIC_PREFIX
    if len(prefix) > MAX_TOPIC_PREFIX_CHARS or any(c in prefix for c in "+#\0") or prefix.strip("/") != prefix:
        raise InvalidArgument(
            f"topic_prefix must be 1 to {MAX_TOPIC_PREFIX_CHARS} characters, without '+', '#' "
            f"or a leading or trailing '/', got {prefix[:80]!r}"
        )
    return prefix


def _target(record: SinkRecord) -> str:
    return f"{record.sink.environment_id}/{record.sink.name} ({record.sink.sink_id})"
