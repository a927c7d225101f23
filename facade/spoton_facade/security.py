"""Who is calling, and whether the browser meant it: the facade's side of authentication.

The facade verifies no credential itself and holds none: it forwards the caller's
``Authorization: Bearer …`` or ``X-API-Key`` header, or the token in its session cookie (set
at login, for what cannot send headers: ``EventSource``, ``<video>``, ``<img>``), to the
inference service as ``authorization: Bearer …`` metadata, and the service decides.

A cookie goes with every request the browser makes to this origin, whoever's page asked for
it, so requests it authorises are held to what only this origin's own pages can send
(:func:`guard_requests`):

* a state-changing method (POST, PUT, PATCH, DELETE) must name this origin (or one allowed
  by ``SPOTON_CORS_ALLOW_ORIGINS``) in ``Origin`` or ``Referer``; a header credential is
  exempt, since no other site can make a browser send one without CORS allowing it;
* a route with a JSON body takes only ``application/json``, which no cross-site form and no
  "simple" cross-site fetch can send (the attack was ``Content-Type: text/plain``).

Every response carries a strict Content-Security-Policy and framing/sniffing headers; the
dashboard loads only its own scripts and styles. A route may send a policy of its own, which
is kept: only the API docs' pages do, to allow their styles by a per-request nonce.
"""

from __future__ import annotations

import dataclasses
import http
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from spoton_facade.problems import AUTHENTICATE_CHALLENGE, PROBLEM_MEDIA_TYPE, Problem

SESSION_COOKIE = "spoton_session"
# What an API key or a JWT can look like; bounded, so no header is passed on unbounded.
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
_CHALLENGE = (b"www-authenticate", AUTHENTICATE_CHALLENGE.encode())
API_KEY_HEADER = "x-api-key"
BEARER = "Bearer"
# Methods that change state: a cookie may authorise them only from this origin's pages.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_MEDIA_TYPE = "application/json"
# Handlers that take a JSON body name it ``data`` (Litestar's convention).
BODY_PARAMETER = "data"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Credential:
    """A caller's credential and where it came from (a header, or the session cookie)."""

    token: str
    source: Literal["header", "cookie"]

    @property
    def well_formed(self) -> bool:
        """Whether it can be what the service issues (keys and JWTs are printable ASCII with no
        space); anything else could not even travel as gRPC metadata."""
        return _TOKEN.fullmatch(self.token) is not None

    def metadata(self) -> list[tuple[str, str]]:
        """The gRPC metadata that carries it to the inference service."""
        return [("authorization", f"{BEARER} {self.token}")]


def credential_of(headers: Headers | Mapping[str, str], cookies: Mapping[str, str]) -> Credential | None:
    """The request's credential: a header wins over the cookie (see the module's docstring)."""
    authorization = headers.get("authorization", "").strip()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == BEARER.lower() and token.strip():
        return Credential(token.strip(), "header")
    if authorization:
        # Another scheme (Basic, say): not well formed, so refused as such.
        return Credential(authorization, "header")
    api_key = headers.get(API_KEY_HEADER, "").strip()
    if api_key:
        return Credential(api_key, "header")
    session = cookies.get(SESSION_COOKIE, "").strip()
    if session:
        return Credential(session, "cookie")
    return None


def guard_requests(allowed_origins: Collection[str], is_open: Callable[[Scope], bool]) -> Any:
    """Middleware factory: the CSRF and media-type checks above, and the security headers.

    A request with no credential at all to a route that is not ``is_open`` is refused (401)
    here, before its parameters and body are validated: the answer to "who are you?" comes
    first, and no route can forget to ask (the service still checks every credential).
    """
    allowed = frozenset(origin.rstrip("/") for origin in allowed_origins)

    def middleware_factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            send = _with_security_headers(send)
            headers = Headers.from_scope(scope)
            credential = credential_of(headers, _cookies(headers))
            # OPTIONS (CORS preflights included) never carries a credential and says only
            # which methods a path has.
            if credential is None and scope["method"] != "OPTIONS" and not is_open(scope):
                detail = "send a credential: Authorization: Bearer <API key or token>, X-API-Key, or log in"
                await _send_problem(scope, send, 401, detail, [_CHALLENGE])
                return
            if credential is not None and not credential.well_formed:
                detail = "the credential is malformed: send Authorization: Bearer <API key or token> or X-API-Key"
                await _send_problem(scope, send, 401, detail, [_CHALLENGE])
                return
            refusal = _refusal(scope, headers, credential, allowed)
            if refusal is not None:
                status, detail = refusal
                await _send_problem(scope, send, status, detail)
                return
            await app(scope, receive, send)

        return middleware

    return middleware_factory


def _refusal(
    scope: Scope, headers: Headers, credential: Credential | None, allowed: frozenset[str]
) -> tuple[int, str] | None:
    """(status, why) when a state-changing request must be refused before its handler runs."""
    if scope["method"] not in UNSAFE_METHODS:
        return None
    if credential is not None and credential.source == "cookie":
        origin = _origin_of(headers)
        own = _own_origin(scope, headers)
        if origin is None:
            return 403, "a request the session cookie authorises must say where it comes from (Origin)"
        if origin != own and origin not in allowed:
            return 403, f"cross-site request refused: origin {origin} is not this site's"
    if _takes_json(scope):
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            return 415, f"send the body as {JSON_MEDIA_TYPE}"
    return None


def _takes_json(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return isinstance(handler, HTTPRouteHandler) and BODY_PARAMETER in handler.parsed_fn_signature.parameters


def _cookies(headers: Headers) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for header in headers.getall("cookie", []):
        for pair in header.split(";"):
            name, _, value = pair.strip().partition("=")
            cookies.setdefault(name, value)
    return cookies


def _origin_of(headers: Headers) -> str | None:
    """The request's origin from ``Origin``, else ``Referer``; None if neither says (or "null")."""
    origin = headers.get("origin")
    if origin and origin != "null":
        return origin.rstrip("/")
    referer = headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


def _own_origin(scope: Scope, headers: Headers) -> str:
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def _with_security_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableScopeHeaders.from_message(message)
            for name, value in SECURITY_HEADERS:
                headers[name.decode()] = value.decode()
            # A route with a policy of its own keeps it: the API docs' pages add a nonce made
            # for each request (spoton_facade.api_docs).
            if "content-security-policy" not in headers:
                headers["content-security-policy"] = CONTENT_SECURITY_POLICY
        await send(message)

    return sending


async def _send_problem(
    scope: Scope, send: Send, status: int, detail: str, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    problem = Problem(
        type="about:blank",
        title=http.HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=scope["path"],
    )
    body = msgspec.json.encode(problem)
    headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", b"%d" % len(body))]
    headers += extra_headers or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# The OpenAPI security schemes: one credential, three ways to send it.
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (spk_…) or an access token from login.",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "An API key (spk_…)."},
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "Set by POST /api/v1/auth/login; unsafe methods must also send this site's Origin.",
    },
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def document_security(document: dict[str, Any], open_operations: Collection[tuple[str, str]]) -> None:
    """Declare the security schemes and require one of them everywhere but ``open_operations``
    ((path, method) pairs, which get ``security: []``); each secured operation lists 401 and 403,
    and each with a JSON body 415."""
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = [{name: []} for name in SECURITY_SCHEMES]
    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if (path, method) in open_operations:
                operation["security"] = []
            else:
                for status in (401, 403):
                    responses.setdefault(str(status), _problem(status))
            if JSON_MEDIA_TYPE in operation.get("requestBody", {}).get("content", {}):
                responses.setdefault("415", _problem(415))


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": http.HTTPStatus(status).phrase,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
    }
