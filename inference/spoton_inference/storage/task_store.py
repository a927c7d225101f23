"""Task records and their track points in PostgreSQL (tables ``tasks``, ``task_state_history``,
``track_points`` and the batch ledger ``track_point_batches``).

A start over an environment takes an advisory lock for its transaction, so of two racing
starts on any replicas the second sees the first's task (:class:`EnvironmentBusy`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import asyncpg

from spoton_inference.domain.events import TaskState
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.services.idempotency import KeyClaim
from spoton_inference.services.task_ports import EnvironmentBusy
from spoton_inference.storage.idempotency_store import claim_with_task, raise_if_claimed
from spoton_inference.storage.track_writer import BatchRejected

if TYPE_CHECKING:  # postgres.py imports this module
    from spoton_inference.storage.postgres import Database

# Names the transaction-scoped advisory locks that serialise task starts per environment
# (the second key is the environment id's hash), across every replica on this database.
_TASK_START_LOCK = 0x5907_0002
# Written into the query, as migration 0013's partial index states it, so the index serves it.
_UNFINISHED_TASK_SQL = ", ".join(f"'{s.value}'" for s in TaskState if not s.is_final)

TRACK_POINT_COLUMNS = (
    "time",
    "task_id",
    "environment_id",
    "camera_id",
    "global_frame_index",
    "local_id",
    "global_id",
    "x1",
    "y1",
    "x2",
    "y2",
    "score",
    "map_x",
    "map_y",
)


class TaskStore:
    """Tasks' records and state history, and their track points."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert_task(
        self,
        environment_id: str,
        camera_ids: list[str],
        total_frames: int,
        *,
        claim: KeyClaim | None = None,
        concurrent: bool = False,
    ) -> TaskRecord:
        """With ``claim``, the task and its idempotency key are recorded together; KeyTaken
        (nothing recorded) when an earlier request holds the key.

        Without ``concurrent``, EnvironmentBusy (nothing recorded) when a task over the
        environment is unfinished. Starts over one environment take an advisory lock for the
        transaction, so of two racing starts the second sees the first's task, on any replica.
        """
        task_id = uuid.uuid4()
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _TASK_START_LOCK, environment_id)
            if claim is not None:
                # A retry of a start that went through answers that start's task, not "busy".
                await raise_if_claimed(conn, claim)
            if not concurrent:
                running = await conn.fetchrow(
                    f"""SELECT * FROM tasks WHERE environment_id = $1 AND state IN ({_UNFINISHED_TASK_SQL})
                        ORDER BY created_at LIMIT 1""",
                    environment_id,
                )
                if running is not None:
                    raise EnvironmentBusy(_task_from_row(running))
            row = await conn.fetchrow(
                """INSERT INTO tasks (task_id, environment_id, camera_ids, state, step, total_frames)
                   VALUES ($1, $2, $3, $4, 'queued', $5) RETURNING *""",
                task_id,
                environment_id,
                camera_ids,
                TaskState.QUEUED.value,
                total_frames,
            )
            await conn.execute(
                "INSERT INTO task_state_history (task_id, state, step) VALUES ($1, $2, 'queued')",
                task_id,
                TaskState.QUEUED.value,
            )
            if claim is not None:
                await claim_with_task(conn, claim, task_id)
        return _task_from_row(row)

    async def update_task(
        self,
        task_id: str,
        *,
        state: TaskState,
        progress: float,
        step: str,
        frames_processed: int,
        error: str = "",
    ) -> None:
        """Persist progress; a change of state is also appended to the state history.

        A task that has ended stays as it ended: a write that comes after (a replica cut off
        from Redis whose tasks another replica has failed over, still running them) changes
        nothing."""
        final = [s.value for s in TaskState if s.is_final]
        async with self._db.pool.acquire() as conn, conn.transaction():
            previous = await conn.fetchval(
                """UPDATE tasks t SET state = $2, progress = $3, step = $4, error = $5,
                          frames_processed = $6, updated_at = now()
                   FROM (SELECT state FROM tasks WHERE task_id = $1 FOR UPDATE) old
                   WHERE t.task_id = $1 AND NOT (old.state = ANY($7::text[])) RETURNING old.state""",
                uuid.UUID(task_id),
                state.value,
                progress,
                step,
                error,
                frames_processed,
                final,
            )
            if previous is not None and previous != state.value:
                await conn.execute(
                    "INSERT INTO task_state_history (task_id, state, step, error) VALUES ($1, $2, $3, $4)",
                    uuid.UUID(task_id),
                    state.value,
                    step,
                    error,
                )

    async def get_task(self, task_id: str) -> TaskRecord | None:
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM tasks WHERE task_id = $1", uuid.UUID(task_id))
        return _task_from_row(row) if row else None

    async def list_tasks(
        self,
        *,
        limit: int,
        before: tuple[dt.datetime, str] | None = None,
        environment_id: str = "",
        state: TaskState | None = None,
        environment_ids: Collection[str] | None = None,
    ) -> list[TaskRecord]:
        """Newest first; ``before`` is the keyset cursor (created_at, task_id) of the last row seen.
        ``environment_ids``: only tasks over these (None: over any)."""
        clauses, args = ["TRUE"], []
        if environment_ids is not None:
            args.append(list(environment_ids))
            clauses.append(f"environment_id = ANY(${len(args)}::text[])")
        if before is not None:
            args += [before[0], uuid.UUID(before[1])]
            clauses.append(f"(created_at, task_id) < (${len(args) - 1}, ${len(args)})")
        if environment_id:
            args.append(environment_id)
            clauses.append(f"environment_id = ${len(args)}")
        if state is not None:
            args.append(state.value)
            clauses.append(f"state = ${len(args)}")
        args.append(limit)
        sql = (
            f"SELECT * FROM tasks WHERE {' AND '.join(clauses)} "
            f"ORDER BY created_at DESC, task_id DESC LIMIT ${len(args)}"
        )
        async with self._db.pool.acquire() as conn:
            return [_task_from_row(r) for r in await conn.fetch(sql, *args)]

    async def fail_unfinished_tasks(self, reason: str, task_ids: Sequence[str]) -> list[str]:
        """Mark those of ``task_ids`` still unfinished (left by a dead process) failed; returns their ids."""
        final = [s.value for s in TaskState if s.is_final]
        async with self._db.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """UPDATE tasks SET state = $1, error = $2, step = 'interrupted', updated_at = now()
                   WHERE NOT (state = ANY($3::text[])) AND task_id = ANY($4::uuid[]) RETURNING task_id""",
                TaskState.FAILED.value,
                reason,
                final,
                [uuid.UUID(t) for t in task_ids],
            )
            ids = [r["task_id"] for r in rows]
            await conn.executemany(
                "INSERT INTO task_state_history (task_id, state, step, error) VALUES ($1, $2, 'interrupted', $3)",
                [(i, TaskState.FAILED.value, reason) for i in ids],
            )
        return [str(i) for i in ids]

    # -- track points ------------------------------------------------------------------

    async def task_track_points(self, task_id: str) -> list[asyncpg.Record]:
        """A task's track points in frame order: camera, frame, ids, box, score, map point."""
        async with self._db.pool.acquire() as conn:
            return await conn.fetch(
                "SELECT camera_id, global_frame_index, local_id, global_id, x1, y1, x2, y2, score, map_x, map_y "
                "FROM track_points WHERE task_id = $1 ORDER BY global_frame_index, camera_id, local_id",
                uuid.UUID(task_id),
            )

    async def copy_track_points(self, rows: list[tuple]) -> None:
        """Plain COPY, no ledger: for bulk loads (and the raw baseline of bench/storage.py)."""
        async with self._db.pool.acquire() as conn:
            await conn.copy_records_to_table("track_points", records=rows, columns=TRACK_POINT_COLUMNS)

    async def write_track_point_batch(self, batch_id: uuid.UUID, rows: list[tuple]) -> bool:
        """COPY ``rows`` and record ``batch_id`` in the ledger, in one transaction.

        False, writing nothing, if the ledger already has ``batch_id``: the batch was committed
        before and only its acknowledgement was lost. BatchRejected if the rows themselves are
        refused (retrying cannot help).
        """
        async with self._db.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "INSERT INTO track_point_batches (batch_id, row_count) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                batch_id,
                len(rows),
            )
            if status == "INSERT 0 0":
                return False
            try:
                await conn.copy_records_to_table("track_points", records=rows, columns=TRACK_POINT_COLUMNS)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                raise BatchRejected(f"{type(exc).__name__}: {exc}") from exc
        return True

    async def count_track_points(self, task_id: str) -> int:
        async with self._db.pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM track_points WHERE task_id = $1", uuid.UUID(task_id))


def _task_from_row(row: asyncpg.Record) -> TaskRecord:
    return TaskRecord(
        task_id=str(row["task_id"]),
        environment_id=row["environment_id"],
        camera_ids=tuple(row["camera_ids"]),
        state=TaskState(row["state"]),
        progress=float(row["progress"]),
        step=row["step"],
        error=row["error"],
        frames_processed=int(row["frames_processed"]),
        total_frames=int(row["total_frames"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
