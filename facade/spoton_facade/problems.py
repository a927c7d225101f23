"""RFC 9457 ``application/problem+json`` for every error the facade returns.

gRPC status codes from the inference service map to HTTP as below. The mapping follows
``google.rpc.Code`` where that is unambiguous, with these choices:

* ``FAILED_PRECONDITION`` and ``ABORTED`` → 409: the resource is in the wrong state for the call.
* ``OUT_OF_RANGE`` → 410 Gone: the facade asks for ranges only when resuming a task's events
  after a sequence number the service no longer keeps (and for expired page tokens); a client
  must start over rather than retry.
* ``CANCELLED`` → 503: the facade cancels calls only when its client has gone, so a CANCELLED
  that reaches a response means the service dropped the call (shutting down).
* ``UNKNOWN``, ``INTERNAL``, ``DATA_LOSS`` → 502: the upstream failed, not the facade; errors
  in the facade itself are 500.
"""

from __future__ import annotations

import http
import logging
from typing import Any

import grpc
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.types import ExceptionHandlersMap

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Problem types for errors the inference service reported; the suffix is the gRPC code.
GRPC_PROBLEM_TYPE = "urn:spoton:problem:grpc:"

GRPC_TO_HTTP: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 410,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNKNOWN: 502,
    grpc.StatusCode.INTERNAL: 502,
    grpc.StatusCode.DATA_LOSS: 502,
    grpc.StatusCode.CANCELLED: 503,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


# Refusals the inference service names in trailing metadata (``spoton-error-reason``) where
# HTTP has a status of its own; the gRPC code alone would map as in GRPC_TO_HTTP.
REASON_METADATA = "spoton-error-reason"
REASON_TO_HTTP: dict[str, int] = {
    # The IETF Idempotency-Key draft: a key reused with another request is 422.
    "idempotency-key-reused": 422,
    # The upload cap: 503 with Retry-After (the server is busy, not the client at fault).
    "too-many-uploads": 503,
    "insufficient-storage": 507,
    # A credential past its rate limit: 429 with the service's retry-after (domain/rate_limit.py).
    "rate-limited": 429,
}
RETRY_AFTER_METADATA = "retry-after"
# The task a refusal is about (a start refused while a task over the environment is
# unfinished: 409, reason `task-running`); the problem carries it as ``task_id``.
TASK_ID_METADATA = "spoton-task-id"
# What a 401 asks for: a bearer token (an API key or an access token; the session cookie
# and X-API-Key carry the same).
AUTHENTICATE_CHALLENGE = 'Bearer realm="spoton"'
# Seconds a client refused for too many concurrent uploads is told to wait (Retry-After).
UPLOAD_RETRY_AFTER_S = 10


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem; ``grpc_status``, ``errors`` and ``task_id`` are extension members."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    # The inference service's gRPC status name, when the problem came from it.
    grpc_status: str | None = None
    # Which request fields failed validation.
    errors: list[dict[str, Any]] | None = None
    # The task the refusal is about: the unfinished task over the environment, for a start
    # refused without ``allow_concurrent``.
    task_id: str | None = None


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries declaring problem+json bodies for ``statuses``."""
    return {
        status: ResponseSpec(
            Problem,
            description=http.HTTPStatus(status).phrase,
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }


# What any call to the inference service can fail with (see GRPC_TO_HTTP); 400 also covers
# the request validation Litestar does before the call.
UPSTREAM_PROBLEMS = problem_responses(400, 401, 403, 429, 502, 503, 504)
# ... and a call that names one resource.
LOOKUP_PROBLEMS = {**problem_responses(404), **UPSTREAM_PROBLEMS}


def http_status_for(code: grpc.StatusCode) -> int:
    """The HTTP status a gRPC status code becomes (502 for codes not in the table)."""
    return GRPC_TO_HTTP.get(code, 502)


def problem_for_rpc(code: grpc.StatusCode, details: str | None, instance: str) -> Problem:
    """The problem for a failed gRPC call; ``details`` is the service's message, shown as is."""
    status = http_status_for(code)
    return Problem(
        type=GRPC_PROBLEM_TYPE + code.name.lower().replace("_", "-"),
        title=http.HTTPStatus(status).phrase,
        status=status,
        detail=details or code.name,
        instance=instance,
        grpc_status=code.name,
    )


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[Problem]:
    """Wrap ``problem`` in a response with the problem+json media type."""
    return Response(problem, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _rpc_error_handler(request: Request[Any, Any, Any], exc: grpc.aio.AioRpcError) -> Response[Problem]:
    problem = problem_for_rpc(exc.code(), exc.details(), request.url.path)
    reason = next((v for k, v in (exc.trailing_metadata() or ()) if k == REASON_METADATA), None)
    task_id = next((v for k, v in (exc.trailing_metadata() or ()) if k == TASK_ID_METADATA), None)
    if task_id:
        problem = msgspec.structs.replace(problem, task_id=task_id)
    if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
        # RFC 9110 §11.6.1: a 401 names the scheme to authenticate with.
        return problem_response(problem, headers={"WWW-Authenticate": AUTHENTICATE_CHALLENGE})
    if reason not in REASON_TO_HTTP:
        return problem_response(problem)
    status = REASON_TO_HTTP[reason]
    problem = msgspec.structs.replace(problem, status=status, title=http.HTTPStatus(status).phrase)
    headers = {"Retry-After": str(UPLOAD_RETRY_AFTER_S)} if reason == "too-many-uploads" else None
    if reason == "rate-limited":
        retry_after = next((v for k, v in exc.trailing_metadata() or () if k == RETRY_AFTER_METADATA), None)
        headers = {"Retry-After": str(retry_after)} if retry_after else None
    return problem_response(problem, headers=headers)


def _http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    errors = exc.extra if isinstance(exc, ValidationException) and isinstance(exc.extra, list) else None
    problem = Problem(
        # about:blank: the HTTP status says all there is; its title is the status phrase.
        type="about:blank",
        title=http.HTTPStatus(exc.status_code).phrase,
        status=exc.status_code,
        detail=exc.detail,
        instance=request.url.path,
        errors=errors,
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", AUTHENTICATE_CHALLENGE)
    return problem_response(problem, headers=headers or None)


def _internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    problem = Problem(
        type="about:blank",
        title=http.HTTPStatus.INTERNAL_SERVER_ERROR.phrase,
        status=500,
        detail="Unexpected error in the facade; its log has the details.",
        instance=request.url.path,
    )
    return problem_response(problem)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    grpc.aio.AioRpcError: _rpc_error_handler,
    HTTPException: _http_exception_handler,
    Exception: _internal_error_handler,
}
