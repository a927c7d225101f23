"""Idempotency keys in PostgreSQL (table ``idempotency_keys``, migration 0009).

A task claims its key in the transaction that inserts it (:func:`claim_with_task`): the
primary key (operation, key) makes a second claim wait for the first transaction and then
fail, so two racing requests create one task. An upload runs for minutes, so it reserves its
key first (:meth:`IdempotencyStore.reserve`), records its job in the transaction that inserts
the job (:func:`complete_with_job`) and releases the key if it fails.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import asyncpg

from spoton_inference.domain.errors import IdempotencyKeyInUse
from spoton_inference.services.idempotency import KeyClaim, KeyHolder, KeyTaken

if TYPE_CHECKING:  # postgres.py imports this module
    from spoton_inference.storage.postgres import Database

# A reservation with no job this old was left by a process that died mid-upload: the key is
# free again. An upload streaming for longer than this may lose its key to a retry.
STALE_RESERVATION_S = 3600.0


async def _forget_expired(conn: asyncpg.Connection, claim: KeyClaim) -> None:
    await conn.execute("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)", claim.ttl_s)


async def _holder(conn: asyncpg.Connection, claim: KeyClaim) -> KeyHolder | None:
    row = await conn.fetchrow(
        """SELECT request_hash, task_id, job_id FROM idempotency_keys
           WHERE operation = $1 AND key = $2 AND created_at >= now() - make_interval(secs => $3)""",
        claim.operation.value,
        claim.key,
        claim.ttl_s,
    )
    if row is None:
        return None
    task_id, job_id = row["task_id"], row["job_id"]
    return KeyHolder(row["request_hash"], task_id and str(task_id), job_id and str(job_id))


async def raise_if_claimed(conn: asyncpg.Connection, claim: KeyClaim) -> None:
    """KeyTaken when an earlier request holds ``claim``'s key (checked before other refusals)."""
    holder = await _holder(conn, claim)
    if holder is not None:
        raise KeyTaken(holder)


async def claim_with_task(conn: asyncpg.Connection, claim: KeyClaim, task_id: uuid.UUID) -> None:
    """Record ``claim`` for ``task_id``, inside the transaction inserting the task; KeyTaken
    (which rolls the task back) when an earlier request holds the key."""
    await _forget_expired(conn, claim)
    claimed = await conn.fetchval(
        """INSERT INTO idempotency_keys (operation, key, request_hash, reservation, task_id)
           VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING RETURNING true""",
        claim.operation.value,
        claim.key,
        claim.request_hash,
        task_id,
    )
    if not claimed:
        raise KeyTaken(await _holder(conn, claim))


async def complete_with_job(conn: asyncpg.Connection, claim: KeyClaim, reservation: uuid.UUID, job_id: str) -> None:
    """Point the reserved key at ``job_id``, inside the transaction inserting the job;
    IdempotencyKeyInUse (the job rolls back) when the reservation lapsed (STALE_RESERVATION_S)
    and a retry took the key meanwhile."""
    done = await conn.fetchval(
        """UPDATE idempotency_keys SET job_id = $4
           WHERE operation = $1 AND key = $2 AND reservation = $3 RETURNING true""",
        claim.operation.value,
        claim.key,
        reservation,
        uuid.UUID(job_id),
    )
    if not done:
        raise IdempotencyKeyInUse(
            f"the upload streamed for over {STALE_RESERVATION_S:.0f} s and a retry with idempotency key "
            f"{claim.key!r} took the key meanwhile; get the job that retry created by sending it again"
        )


class IdempotencyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def lookup(self, claim: KeyClaim) -> KeyHolder | None:
        """What an earlier request with the key recorded, if it is still remembered."""
        async with self._db.pool.acquire() as conn:
            return await _holder(conn, claim)

    async def reserve(self, claim: KeyClaim) -> uuid.UUID:
        """Hold the key for a request that takes a while; KeyTaken when an earlier one holds it."""
        reservation = uuid.uuid4()
        async with self._db.pool.acquire() as conn, conn.transaction():
            await _forget_expired(conn, claim)
            await conn.execute(
                """DELETE FROM idempotency_keys
                   WHERE operation = $1 AND key = $2 AND task_id IS NULL AND job_id IS NULL
                     AND created_at < now() - make_interval(secs => $3)""",
                claim.operation.value,
                claim.key,
                STALE_RESERVATION_S,
            )
            reserved = await conn.fetchval(
                """INSERT INTO idempotency_keys (operation, key, request_hash, reservation)
                   VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
                claim.operation.value,
                claim.key,
                claim.request_hash,
                reservation,
            )
            if not reserved:
                raise KeyTaken(await _holder(conn, claim))
        return reservation

    async def release(self, claim: KeyClaim, reservation: uuid.UUID) -> None:
        """Free a reserved key whose request failed, so that a retry can run it again."""
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                """DELETE FROM idempotency_keys
                   WHERE operation = $1 AND key = $2 AND reservation = $3 AND job_id IS NULL""",
                claim.operation.value,
                claim.key,
                reservation,
            )
