"""The audit log: who did what, when, to what, and how it ended.

Services record task and job control and catalogue changes (:func:`audited` wraps a service
method); the auth edge records credential use (logins, keys created or revoked, refused
credentials) through :meth:`Audit.record`. The actor is the caller of the RPC being served
(:func:`current_principal`). Rows name actors and targets by id and errors by kind, never by
message, so no secret (a password, a key, a URL with credentials) can reach the log.

Writing a row must not stop the work it records: a failed write is logged and dropped, within
AUDIT_WRITE_TIMEOUT_S (PostgreSQL being away fails the action itself anyway, mostly).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.principal import Principal, current_principal

log = logging.getLogger(__name__)
T = TypeVar("T")
AUDIT_WRITE_TIMEOUT_S = 5.0
# Rows past retention are deleted at most this often (on the next write after it).
PRUNE_INTERVAL_S = 3600.0
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
OK = "ok"
# A target names ids a caller sent (possibly bad ones): kept to this length.
MAX_TARGET_CHARS = 300


class AuditAction(enum.StrEnum):
    TASK_START = "task.start"
    TASK_PAUSE = "task.pause"
    TASK_RESUME = "task.resume"
    TASK_CANCEL = "task.cancel"
    TASK_FOCUS = "task.focus"
    JOB_UPLOAD = "job.upload"
    JOB_CANCEL = "job.cancel"
    JOB_DELETE = "job.delete"
    ENVIRONMENT_REGISTER = "environment.register"
    ENVIRONMENT_CREATE = "environment.create"
    ENVIRONMENT_UPDATE = "environment.update"
    ENVIRONMENT_DELETE = "environment.delete"
    CAMERA_CREATE = "camera.create"
    CAMERA_UPDATE = "camera.update"
    CAMERA_DELETE = "camera.delete"
    CAMERA_IMPORT = "camera.import"
    GROUP_CREATE = "group.create"
    GROUP_UPDATE = "group.update"
    GROUP_DELETE = "group.delete"
    ZONE_CREATE = "zone.create"
    ZONE_UPDATE = "zone.update"
    ZONE_DELETE = "zone.delete"
    SINK_CREATE = "sink.create"
    SINK_UPDATE = "sink.update"
    SINK_DELETE = "sink.delete"
    # Credential use, recorded by the auth edge.
    AUTH_LOGIN = "auth.login"
    AUTH_DENIED = "auth.denied"
    KEY_CREATE = "key.create"
    KEY_REVOKE = "key.revoke"
    USER_CREATE = "user.create"
    USER_DELETE = "user.delete"


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEvent:
    at: dt.datetime
    actor: str  # the principal's subject: an API key's or user's name
    actor_kind: str  # api_key, token, system
    credential_id: str
    role: str  # viewer, operator, admin
    action: str  # an AuditAction value
    target: str  # what it acted on, by id: task/<id>, environment/<id>/camera/<id>
    outcome: str  # "ok", or "failed: <error kind>"
    event_id: int = 0  # given by the store


class AuditStorePort(Protocol):
    async def record(self, event: AuditEvent) -> None: ...

    async def list(
        self, page_size: int, page_token: str, actor: str = "", action: str = ""
    ) -> tuple[list[AuditEvent], str]: ...

    async def prune(self, before: dt.datetime) -> int: ...


def failed(exc: BaseException) -> str:
    """The outcome of an action that raised ``exc``: its kind, never its message."""
    return f"failed: {type(exc).__name__}"


class Audit:
    def __init__(
        self, store: AuditStorePort, *, retention_days: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._retention = dt.timedelta(days=retention_days)
        self._clock = clock
        self._pruned_at: float | None = None

    async def record(self, action: str, target: str, outcome: str = OK, *, principal: Principal | None = None) -> None:
        """Append a row; ``principal`` defaults to the caller (pass it where the caller is not
        set yet, as for a login or a refused credential)."""
        who = principal or current_principal()
        event = AuditEvent(
            dt.datetime.now(dt.UTC),
            who.subject,
            who.kind,
            who.credential_id,
            who.role.name.lower(),
            str(action),
            target[:MAX_TARGET_CHARS],
            outcome,
        )
        try:
            async with asyncio.timeout(AUDIT_WRITE_TIMEOUT_S):
                await self._store.record(event)
                await self._prune_now_and_then()
        except Exception as exc:  # the action itself has happened; losing its row is logged
            log.warning("audit event %s %s by %s (%s) not recorded: %s", action, target, who.subject, outcome, exc)

    async def list(
        self, *, page_size: int = 0, page_token: str = "", actor: str = "", action: str = ""
    ) -> tuple[list[AuditEvent], str]:
        """A page of events, newest first, and the next page's token ('' at the end)."""
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        return await self._store.list(size, page_token, actor, action)

    async def _prune_now_and_then(self) -> None:
        now = self._clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_INTERVAL_S:
            return
        self._pruned_at = now
        deleted = await self._store.prune(dt.datetime.now(dt.UTC) - self._retention)
        if deleted:
            log.info("audit log: %d events older than %s deleted", deleted, self._retention)


async def run_audited(
    audit: Audit | None,
    action: str,
    call: Awaitable[T],
    target: str,
    of_result: Callable[[T], str] | None = None,
) -> T:
    """Await ``call`` and record it on ``target`` (named by ``of_result`` once it succeeded,
    when given); a refused call is recorded with its error's kind. ``audit`` None: not recorded."""
    if audit is None:
        return await call
    try:
        result = await call
    except Exception as exc:
        await audit.record(action, target, failed(exc))
        raise
    await audit.record(action, of_result(result) if of_result else target)
    return result


class Audited(Protocol):
    """A service whose methods :func:`audited` wraps: it holds its Audit (None: not recorded)."""

    _audit: Audit | None


def audited(
    action: AuditAction, target: Callable[..., str], of_result: Callable[[Any], str] | None = None
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Record each call of an async service method: ``target`` names what it acts on, from the
    method's arguments (``of_result``, when given, names it from the result once it succeeded,
    e.g. the task a start created). A refused call is recorded with its error's kind."""

    def wrap(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(fn)
        async def wrapper(self: Audited, *args: Any, **kwargs: Any) -> T:
            return await run_audited(self._audit, action, fn(self, *args, **kwargs), target(*args, **kwargs), of_result)

        return wrapper

    return wrap
