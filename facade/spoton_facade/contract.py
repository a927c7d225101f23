"""What the facade accepts, said once, so that bad input is a 400 problem here (not a 5xx
further in) and the OpenAPI document says exactly what is accepted.

* Integers travel as ``int32``/``int64`` protobuf fields: values outside the field's width
  would fail in the facade (500) or overflow in the service, so each is bounded here.
* PostgreSQL text cannot hold NUL, and no id, name or URL needs one: a NUL in the path or the
  query is refused by :func:`refuse_nul` for every route, and body strings use :data:`Text`.
* Ids the service mints (tasks, jobs) are UUIDs.

The rest of the module corrects what Litestar gets wrong about the routes: the methods an
automatic ``OPTIONS`` answer lists (:func:`allow_every_method`), and details of the OpenAPI
document it generates (:func:`finish_openapi`).
"""

from __future__ import annotations

import http
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from spoton_facade.problems import PROBLEM_MEDIA_TYPE, Problem

INT32_MAX = 2**31 - 1
# No NUL anywhere.
NO_NUL = r"^[^\x00]*$"
# Something besides white space (the service refuses blank names), and no NUL.
NON_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
# Empty (the service's default applies) or non-blank.
EMPTY_OR_NON_BLANK = r"^$|" + NON_BLANK
UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

# The service's longest name.
MAX_NAME_CHARS = 200
# Ids of what a client creates (environments, cameras, groups, zones), as the service takes them.
NEW_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

Text = Annotated[str, msgspec.Meta(pattern=NO_NUL)]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS, pattern=NON_BLANK)]
# "" for the service's default name (the id).
DefaultName = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS, pattern=EMPTY_OR_NON_BLANK)]
# An id the body names; the service refuses an empty one.
Id = Annotated[str, msgspec.Meta(min_length=1, pattern=NO_NUL)]
NewId = Annotated[str, msgspec.Meta(pattern=NEW_ID)]
# "" for an id the service generates.
NewIdOrEmpty = Annotated[str, msgspec.Meta(pattern=r"^$|" + NEW_ID)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
# Pixels, counts and ids in an int32 field that cannot be negative.
Count32 = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]

# Sequence numbers and revisions are uint64 fields; msgspec bounds integers within int64,
# which no sequence will reach.
SEQUENCE_MAX = 2**63 - 1

_NUL = b"\x00"


def optional_integer(minimum: int, maximum: int) -> dict[str, Any]:
    """``schema_extra`` for an optional integer parameter, whose bounds Litestar validates but
    leaves out of the schema it generates (``oneOf`` integer or null, unbounded)."""
    bounded = Schema(type=OpenAPIType.INTEGER, minimum=minimum, maximum=maximum)
    return {"one_of": [bounded, Schema(type=OpenAPIType.NULL)]}


def refuse_nul(app: ASGIApp) -> ASGIApp:
    """Middleware: a NUL in the path or the query string is a 400 problem, for every route."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _holds_nul(scope):
            problem = Problem(
                type="about:blank",
                title=http.HTTPStatus.BAD_REQUEST.phrase,
                status=400,
                detail="the path or query holds a NUL character (%00), which no parameter accepts",
                instance=scope["path"].replace("\x00", "\\x00"),
            )
            body = msgspec.json.encode(problem)
            headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", b"%d" % len(body))]
            await send({"type": "http.response.start", "status": problem.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return middleware


def _holds_nul(scope: Scope) -> bool:
    # The query string arrives percent-encoded; the path arrives decoded.
    return "\x00" in scope["path"] or _NUL in unquote_to_bytes(scope.get("query_string", b""))


def allow_every_method(app: ASGIApp) -> ASGIApp:
    """Middleware: ``Allow`` on an automatic ``OPTIONS`` answer lists every method of the path.

    Litestar builds a path's ``OPTIONS`` handler with the first route handler registered for
    it and does not update it as more handlers join the path, so ``Allow`` would leave some
    out (``OPTIONS /api/v1/environments`` answered ``Allow: OPTIONS, POST``, no GET).
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await app(scope, receive, send)
            return
        methods = _methods_of(scope["litestar_app"], scope.get("path_template", ""))

        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and methods:
                headers = MutableScopeHeaders.from_message(message)
                if "allow" in headers:
                    headers["allow"] = ", ".join(methods)
            await send(message)

        await app(scope, receive, send_allow)

    return middleware


def _methods_of(app: Litestar, path_template: str) -> list[str]:
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path_format == path_template:
            return sorted(route.methods)
    return []


COMPONENT_REF = "#/components/schemas/{name}"


def finish_openapi(app: Litestar) -> None:
    """Correct the generated OpenAPI document in place, before it is first served."""
    # Litestar serves this dict as is, building it once; its plugin class is not public.
    document: dict[str, Any] = app.plugins.get("OpenAPIPlugin").provide_openapi_schema()
    # Request bodies as msgspec, which decodes them, describes them: Litestar drops the bounds
    # of optional fields (``float | None`` with ``ge``) and never says unknown fields are refused.
    bodies = list(_strict_structs(msgspec.Struct))
    _, generated = msgspec.json.schema_components(bodies, ref_template=COMPONENT_REF)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in generated.items():
        if name in {body.__name__ for body in bodies} or name not in components:
            components[name] = schema
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") in ("path", "query"):
                    for schema in _string_schemas(parameter.get("schema", {})):
                        schema.setdefault("pattern", NO_NUL)  # as refuse_nul enforces
            for response in operation.get("responses", {}).values():
                modified = response.get("headers", {}).get("last-modified")
                if modified is not None:
                    # An HTTP-date (RFC 9110), not an RFC 3339 date-time as Litestar declares.
                    modified["schema"] = {"type": "string"}
    for schema in _all_schemas(document):
        places = schema.get("prefixItems")
        if schema.get("type") == "array" and places and all(p == places[0] for p in places):
            # A tuple of one type, such as a point [x, y]: that many items of the type. Said so
            # rather than with prefixItems, which Litestar leaves unbounded (any length).
            del schema["prefixItems"]
            schema["items"] = places[0]
            schema["minItems"] = schema["maxItems"] = len(places)


def _strict_structs(cls: type[msgspec.Struct]) -> Iterator[type[msgspec.Struct]]:
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("spoton_facade.") and sub.__struct_config__.forbid_unknown_fields:
            yield sub
        yield from _strict_structs(sub)


def _string_schemas(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """String schemas within ``schema`` (itself, array items, union members) that say nothing
    more specific about their characters (a pattern, a format or a set of values)."""
    if schema.get("type") == "string" and not {"pattern", "format", "enum", "const"} & schema.keys():
        yield schema
    if isinstance(schema.get("items"), dict):
        yield from _string_schemas(schema["items"])
    for member in schema.get("oneOf", []) + schema.get("anyOf", []):
        yield from _string_schemas(member)


def _all_schemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _all_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _all_schemas(value)
