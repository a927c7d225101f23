"""The edge's guard on every incoming call, for every service the server hosts (spoton.v1,
health, reflection), as one server interceptor.

- A body that is not a valid protobuf of the method's request type answers INVALID_ARGUMENT.
  Left to grpc, a unary call would answer UNKNOWN ("Unexpected DecodeError") and a stream
  INTERNAL, although the client is at fault.
- So does a request whose strings hold a NUL (PostgreSQL refuses them in text) or whose enum
  fields hold a number the contract does not define (proto3 keeps such numbers, and a
  handler would read them as "unset" or fail on them), or a Timestamp outside 0001..9999.
- A unary call without a client deadline gets the server's (``SPOTON_GRPC_UNARY_TIMEOUT_S``),
  so no call outlives its caller by much. Calls that stream (uploads, watches, live frames)
  are long-lived by design: they end with the client's deadline, or when the client goes
  (grpc cancels the handler then), and bound their own resources.

Streamed requests are checked as the handler reads them, so a stream fails at the bad
message, after the answers to those before it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from spoton_inference.domain.errors import InvalidArgument

# Problems named in one refusal, and looked for: a hostile message holding millions of them
# costs no more than a few.
MAX_PROBLEMS_NAMED = 5
# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799
NANOS_PER_SECOND = 1_000_000_000
_TIMESTAMP = "google.protobuf.Timestamp"
_CHECKED_TYPES = frozenset({FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_ENUM, FieldDescriptor.TYPE_MESSAGE})

Deserializer = Callable[[bytes], Any]


class RefusedRequest(InvalidArgument):
    """A request message that is not valid protobuf, or breaks the contract in any message."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Refused:
    """What a unary request's parser hands the handler instead of raising: grpc calls it
    before the handler, where an exception could only become UNKNOWN."""

    error: RefusedRequest


@functools.cache
def _checked_fields(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """The fields that can break the contract: text, enums, and messages holding them. Bytes
    are never read here (a frame's pixels would be copied for nothing)."""
    return tuple(f for f in descriptor.fields if f.type in _CHECKED_TYPES)


def contract_problems(message: Message, prefix: str = "") -> Iterator[str]:
    """What in ``message`` (and the messages inside it) breaks the contract, one line each."""
    for field in _checked_fields(message.DESCRIPTOR):
        name = prefix + field.name
        if field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated and not message.HasField(field.name):
            continue
        value = getattr(message, field.name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
            for key, item in value.items():
                where = f"{name}[{key!r}]"
                yield from _value_problems(key_field, key, where)
                yield from _value_problems(value_field, item, where)
        elif field.is_repeated:
            for i, item in enumerate(value):
                yield from _value_problems(field, item, f"{name}[{i}]")
        else:
            yield from _value_problems(field, value, name)


def _value_problems(field: FieldDescriptor, value: Any, name: str) -> Iterator[str]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == _TIMESTAMP:
            yield from _timestamp_problems(value, name)
        else:
            yield from contract_problems(value, name + ".")
    elif field.type == FieldDescriptor.TYPE_STRING:
        if "\x00" in value:
            yield f"{name} contains a NUL character (\\x00), which no text field accepts"
    elif field.type == FieldDescriptor.TYPE_ENUM and value not in field.enum_type.values_by_number:
        known = ", ".join(v.name for v in field.enum_type.values)
        yield f"{name} is {value}, not a {field.enum_type.full_name} value (one of {known})"


def _timestamp_problems(value: Message, name: str) -> Iterator[str]:
    seconds, nanos = value.seconds, value.nanos  # type: ignore[attr-defined]
    if not TIMESTAMP_MIN_SECONDS <= seconds <= TIMESTAMP_MAX_SECONDS or not 0 <= nanos < NANOS_PER_SECOND:
        yield (
            f"{name} ({seconds} s, {nanos} ns) is not a valid timestamp: "
            "seconds must fall within years 0001..9999 and nanos within 0..999999999"
        )


def check_message(message: Message) -> None:
    """RefusedRequest naming what in ``message`` breaks the contract, if anything does."""
    problems = list(itertools.islice(contract_problems(message), MAX_PROBLEMS_NAMED + 1))
    if problems:
        more = "; and more" if len(problems) > MAX_PROBLEMS_NAMED else ""
        raise RefusedRequest(f"{message.DESCRIPTOR.full_name}: " + "; ".join(problems[:MAX_PROBLEMS_NAMED]) + more)


def _message_name(deserializer: Deserializer, method: str) -> str:
    descriptor: Descriptor | None = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    return descriptor.full_name if descriptor is not None else f"request of {method}"


def parser(deserializer: Deserializer, method: str) -> Deserializer:
    """``deserializer``, raising RefusedRequest for bytes that are not a valid message."""
    name = _message_name(deserializer, method)

    def parse(raw: bytes) -> Any:
        try:
            message = deserializer(raw)
        except DecodeError as exc:
            raise RefusedRequest(f"the request body is not a valid {name} protobuf message ({exc})") from None
        if isinstance(message, Message):
            check_message(message)
        return message

    return parse


def _raw_bytes(raw: bytes) -> bytes:
    return raw


def _unary_parser(parse: Deserializer) -> Deserializer:
    def parse_or_refuse(raw: bytes) -> Any:
        try:
            return parse(raw)
        except RefusedRequest as exc:
            return _Refused(exc)

    return parse_or_refuse


async def _refuse(context: grpc.aio.ServicerContext, error: InvalidArgument) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))


def _guard_unary_unary(behaviour: Callable[..., Awaitable[Any]], timeout_s: float) -> Callable[..., Awaitable[Any]]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, _Refused):
            await _refuse(context, request.error)
        if context.time_remaining() is not None:
            return await behaviour(request, context)  # grpc cancels the handler at the client's deadline
        try:
            async with asyncio.timeout(timeout_s):
                return await behaviour(request, context)
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the call ran past the server's {timeout_s:g} s limit for calls without a deadline "
                "(SPOTON_GRPC_UNARY_TIMEOUT_S); set a deadline to wait longer",
            )

    return handle


def _guard_streamed(behaviour: Callable[..., Any], refused_request: bool) -> Callable[..., Any]:
    """A handler with a streamed request or response, of the same kind as ``behaviour`` (an
    async generator, or a coroutine that writes with ``context.write``) as grpc tells them
    apart. A refused message the handler let through (services without their own error
    mapping, e.g. reflection) answers INVALID_ARGUMENT."""
    if inspect.isasyncgenfunction(behaviour):

        async def generate(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if refused_request and isinstance(request, _Refused):
                await _refuse(context, request.error)
            try:
                async for response in behaviour(request, context):
                    yield response
            except RefusedRequest as exc:
                await _refuse(context, exc)

        return generate

    async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if refused_request and isinstance(request, _Refused):
            await _refuse(context, request.error)
        try:
            return await behaviour(request, context)
        except RefusedRequest as exc:
            await _refuse(context, exc)

    return run


def guard_handler(handler: grpc.RpcMethodHandler, method: str, unary_timeout_s: float) -> grpc.RpcMethodHandler:
    """``handler`` with its requests checked and, for a unary call, the server's deadline."""
    deserializer = handler.request_deserializer
    parse = parser(deserializer, method) if deserializer is not None else _raw_bytes
    serializer = handler.response_serializer
    if handler.unary_unary is not None:
        behaviour = _guard_unary_unary(handler.unary_unary, unary_timeout_s)
        return grpc.unary_unary_rpc_method_handler(behaviour, _unary_parser(parse), serializer)
    if handler.unary_stream is not None:
        behaviour = _guard_streamed(handler.unary_stream, refused_request=True)
        return grpc.unary_stream_rpc_method_handler(behaviour, _unary_parser(parse), serializer)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_guard_streamed(handler.stream_unary, False), parse, serializer)
    return grpc.stream_stream_rpc_method_handler(_guard_streamed(handler.stream_stream, False), parse, serializer)


class RequestGuard(grpc.aio.ServerInterceptor):
    """Puts :func:`guard_handler` around every method the server hosts."""

    def __init__(self, unary_timeout_s: float) -> None:
        self.unary_timeout_s = unary_timeout_s
        # One guarded handler per method the server registered: bounded by the services.
        self._guarded: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        guarded = self._guarded.get(method)
        if guarded is None:
            handler = await continuation(handler_call_details)
            if handler is None:  # an unknown method: grpc answers UNIMPLEMENTED
                return None
            guarded = self._guarded[method] = guard_handler(handler, method, self.unary_timeout_s)
        return guarded
