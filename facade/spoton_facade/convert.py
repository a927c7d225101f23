"""Protobuf messages to JSON-ready Python values, in the shape REST and SSE promise.

One walker serves every message so the REST bodies and the SSE payloads agree:

* field names as in the ``.proto`` (snake_case), defaults included;
* enums as their lower-case name without the type prefix (``TASK_STATE_PROCESSING`` →
  ``"processing"``);
* ``google.protobuf.Timestamp`` as an aware UTC ``datetime`` (encoded as ISO-8601), ``None`` if
  unset;
* ``spoton.v1.MapPoint`` as ``[x, y]``, ``None`` if unset, matching ``environment.json``;
* other unset message fields as ``None``; oneof members only when set;
* 64-bit integers as JSON numbers (proto3's JSON mapping would make them strings, which
  browsers then have to parse);
* ``float`` (32-bit) fields rounded to 7 significant digits, so ``0.3`` stays ``0.3``.

Tracking updates are rendered once per event per SSE subscriber, so the per-field decisions
are made once per message type (:func:`_plan`) rather than on every call.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

_TIMESTAMP = "google.protobuf.Timestamp"
_MAP_POINT = "spoton.v1.MapPoint"

# How a field is read: always, element-wise, None when unset, or left out when unset.
_PLAIN, _REPEATED, _NULLABLE, _ONEOF = range(4)

Converter = Callable[[Any], Any] | None
FieldPlan = tuple[str, int, Converter]


def message_to_json(message: Message) -> dict[str, Any]:
    """Render ``message`` as a dict of JSON-ready values (see the module docstring)."""
    out: dict[str, Any] = {}
    for name, mode, convert in _plan(message.DESCRIPTOR):
        if mode == _REPEATED:
            values = getattr(message, name)
            out[name] = list(values) if convert is None else [convert(v) for v in values]
        elif mode == _PLAIN or message.HasField(name):
            value = getattr(message, name)
            out[name] = value if convert is None else convert(value)
        elif mode == _NULLABLE:
            out[name] = None
    return out


def timestamp_to_json(message: Message, name: str) -> dt.datetime | None:
    """The Timestamp field ``name`` of ``message`` as an aware UTC datetime, or ``None``."""
    return _timestamp(getattr(message, name)) if message.HasField(name) else None


def enum_name(enum_type: EnumDescriptor, number: int) -> str:
    """``TASK_STATE_PROCESSING`` → ``processing``; an unknown number becomes its decimal text."""
    value = enum_type.values_by_number.get(number)
    if value is None:
        return str(number)
    return value.name.removeprefix(_enum_prefix(enum_type)).lower()


def enum_names(enum_type: EnumDescriptor) -> list[str]:
    """All names of ``enum_type`` as :func:`enum_name` renders them, in declaration order."""
    return [enum_name(enum_type, value.number) for value in enum_type.values]


def enum_number(enum_type: EnumDescriptor, name: str) -> int:
    """The inverse of :func:`enum_name`; raises ``KeyError`` for an unknown name."""
    return enum_type.values_by_name[_enum_prefix(enum_type) + name.upper()].number


@functools.cache
def _enum_prefix(enum_type: EnumDescriptor) -> str:
    # Protobuf style prefixes values with the enum's name in UPPER_SNAKE: TaskState -> TASK_STATE_.
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_type.name).upper() + "_"


@functools.cache
def _plan(descriptor: Descriptor) -> tuple[FieldPlan, ...]:
    plan: list[FieldPlan] = []
    for field in descriptor.fields:
        if field.is_repeated:
            mode = _REPEATED
        elif field.containing_oneof is not None:
            mode = _ONEOF
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            mode = _NULLABLE
        else:
            mode = _PLAIN
        plan.append((field.name, mode, _converter(field)))
    return tuple(plan)


def _converter(field: FieldDescriptor) -> Converter:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name == _TIMESTAMP:
            return _timestamp
        if name == _MAP_POINT:
            return _map_point
        return message_to_json
    if field.type == FieldDescriptor.TYPE_ENUM:
        return functools.partial(enum_name, field.enum_type)
    if field.type == FieldDescriptor.TYPE_FLOAT:
        return _float32
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _bytes
    return None


def _timestamp(message: Any) -> dt.datetime:
    return message.ToDatetime(tzinfo=dt.UTC)


def _map_point(message: Any) -> list[float]:
    return [message.x, message.y]


def _float32(value: float) -> float:
    return float(f"{value:.7g}")


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")
