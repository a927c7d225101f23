"""The audit log in PostgreSQL (table ``audit_events``, migration 0011)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import asyncpg

from spoton_inference.services.audit import AuditEvent
from spoton_inference.services.request_args import decode_id_token, encode_id_token

if TYPE_CHECKING:
    from spoton_inference.storage.postgres import Database

# Tags this listing's page tokens.
AUDIT_TOKEN = "audit"
_COLUMNS = "event_id, at, actor, actor_kind, credential_id, role, action, target, outcome"


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
            args.append(decode_id_token(AUDIT_TOKEN, page_token))
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
        return rows, encode_id_token(AUDIT_TOKEN, rows[-1].event_id) if more else ""

    async def prune(self, before: dt.datetime) -> int:
        """Delete events older than ``before``; returns how many."""
        async with self._db.pool.acquire() as conn:
            status = await conn.execute("DELETE FROM audit_events WHERE at < $1", before)
        return int(status.split()[-1])
