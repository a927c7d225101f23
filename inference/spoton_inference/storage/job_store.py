"""PostgreSQL rows for jobs: the record, the queue, and deleting a job's rows.

Every write bumps ``revision`` so watchers can tell a job changed. State changes are
conditional on the state they leave (``WHERE state = ...``), so a cancel and the queue's
claim, or a progress report and a cancel, cannot overwrite each other.

Replicas share the table. The claim records its replica as ``owner``; a run's writes and a
requeue are also conditional on the claim (owner and attempt), so when two replicas requeue a
lapsed replica's job at once only one does, and a replica whose claim was taken from it (its
lease lapsed, the job was requeued) writes nothing more to the job.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection

import asyncpg
import msgspec

from spoton_inference.domain.job_progress import Snapshot
from spoton_inference.domain.job_types import JobOptions, JobRecord, JobResult, JobState, NewJob, VideoInfo
from spoton_inference.services.idempotency import KeyClaim
from spoton_inference.services.jobs import JobClaim
from spoton_inference.storage.idempotency_store import complete_with_job
from spoton_inference.storage.postgres import Database

_UNFINISHED = [JobState.QUEUED.value, JobState.RUNNING.value]
_CHANGE = "revision = revision + 1, updated_at = now()"
# A new attempt's figures start from nothing.
_FIGURES_RESET = (
    "progress = 0, eta_seconds = NULL, frames_per_second = 0, frames_processed = 0, "
    "rendering_frames_per_second = 0, frames_rendered = 0, processing_seconds = 0, rendering_seconds = 0"
)


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, job: NewJob, key: tuple[KeyClaim, uuid.UUID] | None = None) -> JobRecord:
        """With ``key`` (a claim and its reservation), the key is pointed at the job in the same
        transaction; KeyTaken (nothing recorded) when the reservation lapsed."""
        async with self._db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """INSERT INTO jobs (job_id, name, filename, state, step, size_bytes, video, options,
                                     environment_id, camera_id, total_frames)
                   VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10) RETURNING *""",
                uuid.UUID(job.job_id),
                job.name,
                job.filename,
                JobState.QUEUED.value,
                job.size_bytes,
                msgspec.json.encode(job.video).decode(),
                msgspec.json.encode(job.options).decode(),
                job.environment_id,
                job.camera_id,
                job.video.frames,
            )
            if key is not None:
                await complete_with_job(conn, *key, job.job_id)
        return _record(row)

    async def get(self, job_id: str) -> JobRecord | None:
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM jobs WHERE job_id = $1", uuid.UUID(job_id))
        return _record(row) if row else None

    async def list(
        self,
        *,
        limit: int,
        before: tuple[dt.datetime, str] | None,
        state: JobState | None,
        environment_ids: Collection[str] | None = None,
    ) -> list[JobRecord]:
        """Newest first; ``before`` is the keyset cursor (created_at, job_id) of the last row seen;
        ``environment_ids``: only jobs over these (None: any)."""
        clauses, args = ["TRUE"], []
        if environment_ids is not None:
            args.append(list(environment_ids))
            clauses.append(f"environment_id = ANY(${len(args)}::text[])")
        if before is not None:
            args += [before[0], uuid.UUID(before[1])]
            clauses.append(f"(created_at, job_id) < (${len(args) - 1}, ${len(args)})")
        if state is not None:
            args.append(state.value)
            clauses.append(f"state = ${len(args)}")
        args.append(limit)
        sql = (
            f"SELECT * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY created_at DESC, job_id DESC LIMIT ${len(args)}"
        )
        async with self._db.pool.acquire() as conn:
            return [_record(r) for r in await conn.fetch(sql, *args)]

    async def claim_next(self, owner: str) -> JobRecord | None:
        """The oldest queued job, now running on replica ``owner`` (one attempt more, the owner
        set in the same statement); None when the queue is empty."""
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""UPDATE jobs SET state = $1, step = 'starting', error = '', {_FIGURES_RESET},
                           attempts = attempts + 1, started_at = now(), owner = $3, {_CHANGE}
                    WHERE job_id = (SELECT job_id FROM jobs WHERE state = $2 ORDER BY created_at, job_id
                                    FOR UPDATE SKIP LOCKED LIMIT 1)
                    RETURNING *""",
                JobState.RUNNING.value,
                JobState.QUEUED.value,
                owner,
            )
        return _record(row) if row else None

    async def report(
        self,
        job_id: str,
        *,
        step: str,
        snapshot: Snapshot,
        total_frames: int,
        task_id: str = "",
        claim: JobClaim | None = None,
    ) -> bool:
        """Progress of a running job (with ``claim``: only while it runs under that claim);
        False, nothing written, once it does not. The progress stored never goes back
        (GREATEST), even if reports were to land out of order."""
        async with self._db.pool.acquire() as conn:
            status = await conn.execute(
                f"""UPDATE jobs SET step = $2, progress = GREATEST(progress, $3), eta_seconds = $4,
                           frames_per_second = $5, frames_processed = $6, total_frames = $7,
                           task_id = COALESCE($8, task_id), rendering_frames_per_second = $10,
                           frames_rendered = $11, processing_seconds = $12, rendering_seconds = $13, {_CHANGE}
                    WHERE job_id = $1 AND state = $9 AND {_claimed_by(14, 15)}""",
                uuid.UUID(job_id),
                step,
                snapshot.progress,
                snapshot.eta_seconds,
                snapshot.frames_per_second,
                snapshot.frames_processed,
                total_frames,
                uuid.UUID(task_id) if task_id else None,
                JobState.RUNNING.value,
                snapshot.rendering_frames_per_second,
                snapshot.frames_rendered,
                snapshot.processing_seconds,
                snapshot.rendering_seconds,
                *_claim_args(claim),
            )
        return status != "UPDATE 0"

    async def rendering_pixel_rate(self) -> float:
        """Pixels per second the newest completed job rendered at; 0 before any job completed.
        A rendering estimate for a job of another frame size divides it by that size."""
        async with self._db.pool.acquire() as conn:
            rate = await conn.fetchval(
                """SELECT rendering_frames_per_second * (video->>'width')::float8 * (video->>'height')::float8
                   FROM jobs WHERE state = $1 AND rendering_frames_per_second > 0
                   ORDER BY finished_at DESC LIMIT 1""",
                JobState.COMPLETED.value,
            )
        return float(rate or 0.0)

    async def finish(
        self,
        job_id: str,
        state: JobState,
        *,
        step: str,
        error: str = "",
        results: tuple[JobResult, ...] = (),
        from_states: tuple[JobState, ...] = (JobState.QUEUED, JobState.RUNNING),
        claim: JobClaim | None = None,
    ) -> JobRecord | None:
        """Move an unfinished job (in one of ``from_states``; with ``claim``, running under that
        claim) to final ``state``; None if it was not."""
        completed = state is JobState.COMPLETED
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""UPDATE jobs SET state = $2, step = $3, error = $4, results = $5,
                           progress = CASE WHEN $6 THEN 1 ELSE progress END,
                           eta_seconds = CASE WHEN $6 THEN 0 ELSE NULL END,
                           finished_at = now(), {_CHANGE}
                    WHERE job_id = $1 AND state = ANY($7::text[]) AND {_claimed_by(8, 9)} RETURNING *""",
                uuid.UUID(job_id),
                state.value,
                step,
                error,
                msgspec.json.encode(list(results)).decode(),
                completed,
                [s.value for s in from_states],
                *_claim_args(claim),
            )
        return _record(row) if row else None

    async def requeue(self, job_id: str, step: str, claim: JobClaim) -> bool:
        """A job running under ``claim`` back to the queue (its run was interrupted); False,
        nothing changed, if it no longer runs under that claim. One statement, so of replicas
        requeueing one job at once exactly one does."""
        async with self._db.pool.acquire() as conn:
            status = await conn.execute(
                f"""UPDATE jobs SET state = $2, step = $3, {_FIGURES_RESET}, {_CHANGE}
                    WHERE job_id = $1 AND state = $4 AND {_claimed_by(5, 6)}""",
                uuid.UUID(job_id),
                JobState.QUEUED.value,
                step,
                JobState.RUNNING.value,
                *_claim_args(claim),
            )
        return status != "UPDATE 0"

    async def running(self) -> list[tuple[JobRecord, str]]:
        """The running jobs, oldest first, each with the replica that runs it ('' if claimed
        before owners were recorded)."""
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM jobs WHERE state = $1 ORDER BY created_at", JobState.RUNNING.value)
        return [(_record(r), r["owner"]) for r in rows]

    async def ids(self) -> set[str]:
        async with self._db.pool.acquire() as conn:
            return {str(r["job_id"]) for r in await conn.fetch("SELECT job_id FROM jobs")}

    async def delete(self, job_id: str, environment_id: str) -> list[str] | None:
        """Delete a finished job's row and its tasks' rows; returns those task ids.

        Refuses (None, nothing deleted) unless the job is finished, checked in the same
        transaction as the delete.
        """
        async with self._db.pool.acquire() as conn, conn.transaction():
            state = await conn.fetchval("SELECT state FROM jobs WHERE job_id = $1 FOR UPDATE", uuid.UUID(job_id))
            if state is None or state in _UNFINISHED:
                return None
            ids = [
                r["task_id"]
                for r in await conn.fetch("SELECT task_id FROM tasks WHERE environment_id = $1", environment_id)
            ]
            await conn.execute("DELETE FROM track_points WHERE task_id = ANY($1::uuid[])", ids)
            await conn.execute("DELETE FROM identity_embeddings WHERE task_id = ANY($1::uuid[])", ids)
            await conn.execute("DELETE FROM tasks WHERE task_id = ANY($1::uuid[])", ids)
            await conn.execute("DELETE FROM jobs WHERE job_id = $1", uuid.UUID(job_id))
        return [str(i) for i in ids]


def _record(row: asyncpg.Record) -> JobRecord:
    return JobRecord(
        job_id=str(row["job_id"]),
        name=row["name"],
        filename=row["filename"],
        state=JobState(row["state"]),
        step=row["step"],
        error=row["error"],
        progress=float(row["progress"]),
        eta_seconds=row["eta_seconds"],
        frames_per_second=float(row["frames_per_second"]),
        frames_processed=int(row["frames_processed"]),
        total_frames=int(row["total_frames"]),
        size_bytes=int(row["size_bytes"]),
        video=msgspec.json.decode(row["video"], type=VideoInfo),
        options=msgspec.json.decode(row["options"], type=JobOptions),
        environment_id=row["environment_id"],
        camera_id=row["camera_id"],
        task_id=str(row["task_id"]) if row["task_id"] else "",
        results=tuple(msgspec.json.decode(row["results"], type=list[JobResult])),
        attempts=int(row["attempts"]),
        revision=int(row["revision"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        rendering_frames_per_second=float(row["rendering_frames_per_second"]),
        frames_rendered=int(row["frames_rendered"]),
        processing_seconds=float(row["processing_seconds"]),
        rendering_seconds=float(row["rendering_seconds"]),
    )


def _claimed_by(owner: int, attempt: int) -> str:
    """The condition "runs under the claim in parameters $owner, $attempt" (both NULL: any)."""
    return f"(${owner}::text IS NULL OR (owner = ${owner}::text AND attempts = ${attempt}::integer))"


def _claim_args(claim: JobClaim | None) -> tuple[str | None, int | None]:
    return (None, None) if claim is None else (claim.owner, claim.attempt)
