"""Authentication and the role check on every call, as one server interceptor.

It runs before the request guard (grpc_api/guard.py): a caller without a valid credential
learns UNAUTHENTICATED, never what the contract says about its request. For each call:

- a method missing from grpc_api/access.py is refused (PERMISSION_DENIED), so a new RPC is
  closed until given a role; OPEN methods (health, reflection, Login) pass as they are;
- the credential in ``authorization: Bearer <API key or token>`` or ``x-api-key`` metadata
  becomes a :class:`Principal` (services/auth.py), or the call answers UNAUTHENTICATED saying why;
- a principal whose role is below the method's answers PERMISSION_DENIED;
- otherwise the handler runs with :func:`current_principal` set to the caller.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from spoton_inference.domain.errors import PermissionDenied, Unauthenticated, Unavailable
from spoton_inference.domain.principal import Principal, Role, reset_current_principal, set_current_principal
from spoton_inference.grpc_api.access import OPEN, required
from spoton_inference.services.audit import Audit, AuditAction, failed
from spoton_inference.services.auth import Authenticator, credential_from_metadata, parse_api_key

log = logging.getLogger(__name__)

NO_CREDENTIAL = (
    "this call needs a credential: send 'authorization: Bearer <API key or access token>' "
    "(or 'x-api-key: <API key>') metadata; AuthService/Login exchanges a password for a token"
)


def _refusing(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of ``handler``'s kind that answers ``code`` without reading the request."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, message)

    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(code, message)
        yield  # an async generator, as grpc expects of a streamed response

    return _replaced(handler, refuse, refuse_stream)


def _as_principal(handler: grpc.RpcMethodHandler, principal: Principal) -> grpc.RpcMethodHandler:
    """``handler`` with :func:`current_principal` set to ``principal`` while it runs."""

    def wrap(behaviour: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behaviour):

            async def generate(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                token = set_current_principal(principal)
                try:
                    async for response in behaviour(request, context):
                        yield response
                finally:
                    try:
                        reset_current_principal(token)
                    except ValueError:  # closed from another context: that context never had it
                        pass

            return generate

        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = set_current_principal(principal)
            try:
                return await behaviour(request, context)
            finally:
                reset_current_principal(token)

        return run

    return _replaced(handler, wrap=wrap)


def _replaced(
    handler: grpc.RpcMethodHandler,
    unary_response: Callable[..., Awaitable[Any]] | None = None,
    streamed_response: Callable[..., AsyncIterator[Any]] | None = None,
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
) -> grpc.RpcMethodHandler:
    deserialize, serialize = handler.request_deserializer, handler.response_serializer

    def pick(original: Callable[..., Any], streamed: bool) -> Callable[..., Any]:
        if wrap is not None:
            return wrap(original)
        return streamed_response if streamed else unary_response  # type: ignore[return-value]

    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(pick(handler.unary_unary, False), deserialize, serialize)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(pick(handler.unary_stream, True), deserialize, serialize)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(pick(handler.stream_unary, False), deserialize, serialize)
    return grpc.stream_stream_rpc_method_handler(pick(handler.stream_stream, True), deserialize, serialize)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """See the module's docstring. ``authenticator`` None: authentication is off
    (SPOTON_AUTH_ENABLED=false), every call acts as the service itself (an admin)."""

    def __init__(self, authenticator: Authenticator | None, audit: Audit | None = None) -> None:
        self.authenticator = authenticator
        self.audit = audit

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or self.authenticator is None:
            return handler  # an unknown method: grpc answers UNIMPLEMENTED
        method = handler_call_details.method
        need = required(method)
        if need is None:
            log.error("%s is missing from grpc_api/access.py: refused", method)
            return _refusing(
                handler, grpc.StatusCode.PERMISSION_DENIED, f"{method} has no access rule on this server: refused"
            )
        if need == OPEN:
            return handler
        credential = None
        try:
            credential = credential_from_metadata(handler_call_details.invocation_metadata)
            if credential is None:
                raise Unauthenticated(NO_CREDENTIAL)
            principal = await self.authenticator.authenticate(credential)
        except Unauthenticated as exc:
            if credential is not None:  # a credential was used and refused: audited
                await self._record_denied(method, _refused_as(credential), exc)
            return _refusing(handler, grpc.StatusCode.UNAUTHENTICATED, str(exc))
        except Unavailable as exc:
            return _refusing(handler, grpc.StatusCode.UNAVAILABLE, f"cannot check the credential now: {exc}")
        if not principal.allows(need):
            await self._record_denied(method, principal, PermissionDenied(method))
            return _refusing(
                handler,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method} needs the {need.name.lower()} role; {principal.subject!r} has {principal.role.name.lower()}",
            )
        return _as_principal(handler, principal)

    async def _record_denied(self, method: str, principal: Principal, exc: Exception) -> None:
        if self.audit is not None:
            await self.audit.record(AuditAction.AUTH_DENIED, f"rpc{method}", failed(exc), principal=principal)


def _refused_as(credential: str) -> Principal:
    """Who a refused credential claimed to be, for the audit log: a key by its id (never its
    secret), a token by nothing; with the least role, as it was granted none."""
    parsed = parse_api_key(credential)
    if parsed is not None:
        return Principal("(refused API key)", Role.VIEWER, frozenset(), parsed[0], "api_key")
    return Principal("(refused token)", Role.VIEWER, frozenset(), "", "token")
