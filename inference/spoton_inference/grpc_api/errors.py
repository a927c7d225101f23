"""Map core errors to gRPC status codes, at the edge only."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import grpc

from spoton_inference.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    SpotOnError,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
# Trailing metadata naming why a request was refused, where the status code alone is not
# enough (an upload that is no video: INVALID_ARGUMENT, but HTTP 415 rather than 400).
REASON_METADATA = "spoton-error-reason"
# Whole seconds a rate-limited caller should wait before trying again (RateLimited).
RETRY_AFTER_METADATA = "retry-after"
# The task a refusal is about (TaskRunning: the unfinished task over the environment).
TASK_ID_METADATA = "spoton-task-id"

# A PostgreSQL connection lost under a handler (its server killed or restarting) that no
# store turned into Unavailable: the caller should retry, as for any outage, not see INTERNAL.
POSTGRES_LOST: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)

STATUS_FOR: list[tuple[type[Exception], grpc.StatusCode]] = [
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (OutOfRange, grpc.StatusCode.OUT_OF_RANGE),
]


def status_for(exc: Exception) -> grpc.StatusCode | None:
    return next((code for kind, code in STATUS_FOR if isinstance(exc, kind)), None)


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    if isinstance(exc, POSTGRES_LOST):
        exc = Unavailable(f"PostgreSQL connection lost ({type(exc).__name__}); retry")
    code = status_for(exc)
    if code is None:
        if isinstance(exc, SpotOnError):
            code = grpc.StatusCode.INTERNAL
        else:
            log.exception("unexpected error")
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
    reason = getattr(exc, "reason", None)
    trailing: tuple[tuple[str, str], ...] = ((REASON_METADATA, reason),) if reason else ()
    retry_after_s = getattr(exc, "retry_after_s", None)
    if retry_after_s is not None:
        trailing += ((RETRY_AFTER_METADATA, str(math.ceil(retry_after_s))),)
    task_id = getattr(exc, "task_id", None)
    if task_id:
        trailing += ((TASK_ID_METADATA, task_id),)
    await context.abort(code, str(exc), trailing_metadata=trailing)


def unary(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Turn core errors raised by a unary handler into the right status."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)
            raise AssertionError("unreachable") from exc

    return wrapper


def streaming(fn: Callable[..., AsyncIterator[T]]) -> Callable[..., AsyncIterator[T]]:
    """The same for server-streaming handlers."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[T]:
        try:
            async for item in fn(self, request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc)

    return wrapper
