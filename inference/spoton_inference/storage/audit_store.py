"""The audit log in PostgreSQL (table ``audit_events``, migration 0011)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import TYPE_CHECKING

import asyncpg

from spoton_inference.core.audit import AuditEvent
from spoton_inference.domain.errors import InvalidArgument

if TYPE_CHECKING:
    from spoton_inference.storage.postgres import Database

_COLUMNS = "event_id, at, actor, actor_kind, credential_id, role, action, target, outcome"


def _token(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"audit|{event_id}".encode()).decode()


def _after(token: str) -> int:
    try:
        kind, event_id = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        if kind != "audit":
            raise ValueError(kind)
        return int(event_id)
    except ValueError:
        raise InvalidArgument("page_token is not one this server issued") from None


def _event(row: asyncpg.Record) -> AuditEvent:
    return AuditEvent(
        at=row["at"],
        actor=row["actor"],
        actor_kind=row["actor_kind"],
        credential_id=row["credential_id"],
        role=row["role"],
        action=row["action"],
        target=row["target"],
        outcome=row["outcome"],
        event_id=row["event_id"],
    )


class AuditStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, event: AuditEvent) -> None:
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO audit_events (at, actor, actor_kind, credential_id, role, action, target, outcome)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                event.at,
                event.actor,
                event.actor_kind,
                event.credential_id,
                event.role,
                event.action,
                event.target,
                event.outcome,
            )

    async def list(
        self, page_size: int, page_token: str = "", actor: str = "", action: str = ""
    ) -> tuple[list[AuditEvent], str]:
        """Newest first (by event id, the order they were written in); ``actor`` and ``action``
        filter when given. Returns the page and the next page's token ('' at the end)."""
        clauses, args = ["TRUE"], []
        if page_token:
            args.append(_after(page_token))
            clauses.append(f"event_id < ${len(args)}")
        if actor:
            args.append(actor)
            clauses.append(f"actor = ${len(args)}")
        if action:
            args.append(action)
            clauses.append(f"action = ${len(args)}")
        args.append(page_size + 1)
        sql = (
            f"SELECT {_COLUMNS} FROM audit_events WHERE {' AND '.join(clauses)} "
            f"ORDER BY event_id DESC LIMIT ${len(args)}"
        )
        async with self._db.pool.acquire() as conn:
            rows = [_event(r) for r in await conn.fetch(sql, *args)]
        more = len(rows) > page_size
        rows = rows[:page_size]
        return rows, _token(rows[-1].event_id) if more else ""

    async def prune(self, before: dt.datetime) -> int:
        """Delete events older than ``before``; returns how many."""
        async with self._db.pool.acquire() as conn:
            status = await conn.execute("DELETE FROM audit_events WHERE at < $1", before)
        return int(status.split()[-1])
