"""PostgreSQL access: the catalogue, task records and track-point history (asyncpg).

Every connection comes through :class:`GuardedPool`: a PostgreSQL that is down, restarting
or frozen is found within ``timeout_s`` (SPOTON_POSTGRES_TIMEOUT_S) on taking a connection,
and any connection failure, then or mid-query, is raised as :class:`Unavailable` naming
PostgreSQL, so an RPC answers UNAVAILABLE at once instead of INTERNAL or a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path

import asyncpg
import numpy as np

from spoton_inference.core.idempotency import KeyClaim
from spoton_inference.core.secrets import SecretBox
from spoton_inference.domain.camera_source import CameraSource, SourceKind
from spoton_inference.domain.environment import Camera, Environment, EnvironmentOrigin, FloorMap, SubVideo
from spoton_inference.domain.errors import Unavailable
from spoton_inference.domain.events import TaskState
from spoton_inference.domain.geometry import Homography
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.storage.camera_secrets import open_sealed, seal_source, seal_stored_secrets
from spoton_inference.storage.idempotency_store import claim_with_task, raise_if_claimed
from spoton_inference.storage.migrate import migrate
from spoton_inference.storage.track_writer import BatchRejected


class EnvironmentBusy(Exception):
    """A start without ``concurrent`` found an unfinished task over the environment (``running``)."""

    def __init__(self, running: TaskRecord) -> None:
        super().__init__(f"task {running.task_id} over {running.environment_id!r} is unfinished")
        self.running = running


# Names the transaction-scoped advisory locks that serialise task starts per environment
# (the second key is the environment id's hash), across every replica on this database.
_TASK_START_LOCK = 0x5907_0002
# Written into the query, as migration 0013's partial index states it, so the index serves it.
_UNFINISHED_TASK_SQL = ", ".join(f"'{s.value}'" for s in TaskState if not s.is_final)


# A PostgreSQL that is down, restarting, shutting down or cut off, as asyncpg reports it;
# not an error of the query itself.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
# A connection that cannot run a query at all (asyncpg: "cannot switch to state 12; another
# operation (2) is in progress", "connection is closed"), as those of a killed server may be.
BROKEN_CONNECTION: tuple[type[BaseException], ...] = (asyncpg.InterfaceError, asyncpg.InternalClientError)
DEFAULT_TIMEOUT_S = 1.0
# Backstop for any one statement (COPY of a batch, maintenance); a frozen server is found
# sooner, on taking a connection.
COMMAND_TIMEOUT_S = 120.0


class GuardedPool:
    """An asyncpg pool whose ``acquire()`` checks the server within ``timeout_s`` and raises
    :class:`Unavailable` for any connection failure."""

    def __init__(self, pool: asyncpg.Pool, where: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.raw = pool
        self.where = where
        self.timeout_s = timeout_s

    async def close(self) -> None:
        await self.raw.close()

    def get_size(self) -> int:
        return self.raw.get_size()

    @contextlib.asynccontextmanager
    async def acquire(self, *, check_s: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A connection known to answer; ``check_s`` overrides ``timeout_s`` for the check."""
        bound = self.timeout_s if check_s is None else check_s
        for attempt in range(2):
            try:
                async with asyncio.timeout(bound):
                    conn = await self.raw.acquire()
            except CONNECTION_ERRORS as exc:
                raise self._unavailable(exc) from exc
            try:
                # A pooled connection to a frozen server would hang its first query: ask first.
                async with asyncio.timeout(bound):
                    await conn.fetchval("SELECT 1")
                break
            except CONNECTION_ERRORS as exc:
                _discard(conn)  # not close(): a frozen server would never answer the goodbye
                await self.raw.release(conn)
                raise self._unavailable(exc) from exc
            except BROKEN_CONNECTION as exc:
                # Left mid-operation when its server died under it: unusable. Another may do.
                _discard(conn)
                await self.raw.release(conn)
                if attempt:
                    raise self._unavailable(exc) from exc
            except BaseException:
                await self.raw.release(conn)
                raise
        try:
            try:
                yield conn
            except CONNECTION_ERRORS as exc:
                raise self._unavailable(exc) from exc
            except BROKEN_CONNECTION as exc:  # its server died mid-query: never reuse it
                _discard(conn)
                raise self._unavailable(exc) from exc
        finally:
            await self.raw.release(conn)

    def _unavailable(self, exc: BaseException) -> Unavailable:
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, TimeoutError):
            what = f"no answer within {self.timeout_s:g} s (SPOTON_POSTGRES_TIMEOUT_S)"
        return Unavailable(f"PostgreSQL at {self.where} is unavailable ({what}); retry shortly")


def _discard(conn: asyncpg.Connection) -> None:
    """Terminate a pooled connection, unless the pool already let go of it: asyncpg releases
    (and detaches) one whose server closed it, and terminate() on that raises InterfaceError."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


def describe_dsn(dsn: str) -> str:
    """host:port/database of a DSN, without credentials."""
    url = urllib.parse.urlsplit(dsn)
    return f"{url.hostname}:{url.port or 5432}{url.path}"


class Database:
    """A connection pool plus the queries the service needs."""

    def __init__(self, pool: GuardedPool | asyncpg.Pool, secrets: SecretBox | None = None) -> None:
        self.pool = pool if isinstance(pool, GuardedPool) else GuardedPool(pool, "PostgreSQL")
        # Seals camera passwords at rest. The service passes its configured box; without one
        # (tools, tests) a key of this process alone is used: what it seals, only it can open.
        self.secrets = secrets or SecretBox.ephemeral()

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        secrets: SecretBox | None = None,
    ) -> Database:
        """A pool on ``dsn`` with the schema migrated; with ``secrets``, stored camera passwords
        are sealed (plain-text ones from before 0012) or re-encrypted under its first key."""
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, command_timeout=COMMAND_TIMEOUT_S)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                if secrets is not None:
                    await seal_stored_secrets(conn, secrets)
        except BaseException:
            await pool.close()
            raise
        return cls(GuardedPool(pool, describe_dsn(dsn), timeout_s), secrets)

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self) -> None:
        async with self.pool.acquire(check_s=2) as conn:
            await conn.fetchval("SELECT 1")

    # -- catalogue ---------------------------------------------------------------------

    async def upsert_environment(self, env: Environment) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO environments (environment_id, name, source_dir, map_image, metres_per_pixel, origin)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (environment_id) DO UPDATE SET name = $2, source_dir = $3,
                       map_image = $4, metres_per_pixel = $5, origin = $6, updated_at = now()""",
                env.environment_id,
                env.name,
                str(env.source_dir) if env.source_dir else None,
                str(env.floor_map.image) if env.floor_map.image else None,
                env.floor_map.metres_per_pixel,
                env.origin.value,
            )
            # Delete the cameras no longer listed, upsert the others. No foreign key points at a camera:
            # its health checks are keyed by id alone and outlive a deleted camera until pruned.
            await conn.execute(
                "DELETE FROM cameras WHERE environment_id = $1 AND NOT camera_id = ANY($2::text[])",
                env.environment_id,
                [c.camera_id for c in env.cameras],
            )
            await conn.executemany(
                """INSERT INTO cameras (environment_id, camera_id, name, fps, width, height,
                                        homography, sub_videos, position, group_id, source_kind, source_url,
                                        source_username, source_password, detection_threshold, location, enabled,
                                        source_secret)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '', $14, $15, $16, $17)
                   ON CONFLICT (environment_id, camera_id) DO UPDATE SET
                       name = $3, fps = $4, width = $5, height = $6, homography = $7, sub_videos = $8,
                       position = $9, group_id = $10, source_kind = $11, source_url = $12,
                       source_username = $13, source_password = '', detection_threshold = $14,
                       location = $15, enabled = $16, source_secret = $17""",
                [
                    (
                        env.environment_id,
                        c.camera_id,
                        c.name,
                        c.fps,
                        c.width,
                        c.height,
                        json.dumps(_homography_doc(c.homography)) if c.homography else None,
                        json.dumps([{"path": str(s.path), "num_frames": s.num_frames} for s in c.sub_videos]),
                        i,
                        c.group_id,
                        str(c.source.kind),
                        c.source.url,
                        c.source.username,
                        c.detection_threshold,
                        c.location,
                        c.enabled,
                        seal_source(self.secrets, c.source),
                    )
                    for i, c in enumerate(env.cameras)
                ],
            )

    async def list_environments(self) -> list[Environment]:
        async with self.pool.acquire() as conn:
            envs = await conn.fetch("SELECT * FROM environments ORDER BY environment_id")
            cams = await conn.fetch("SELECT * FROM cameras ORDER BY environment_id, position")
        by_env: dict[str, list[Camera]] = {}
        for row in cams:
            by_env.setdefault(row["environment_id"], []).append(_camera_from_row(row, self.secrets))
        return [
            Environment(
                r["environment_id"],
                r["name"],
                FloorMap(Path(r["map_image"]) if r["map_image"] else None, r["metres_per_pixel"]),
                tuple(by_env.get(r["environment_id"], [])),
                Path(r["source_dir"]) if r["source_dir"] else None,
                origin=EnvironmentOrigin(r["origin"]),
            )
            for r in envs
        ]

    # -- tasks -------------------------------------------------------------------------

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
        async with self.pool.acquire() as conn, conn.transaction():
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
        """Persist progress; a change of state is also appended to the state history."""
        async with self.pool.acquire() as conn, conn.transaction():
            previous = await conn.fetchval(
                """UPDATE tasks t SET state = $2, progress = $3, step = $4, error = $5,
                          frames_processed = $6, updated_at = now()
                   FROM (SELECT state FROM tasks WHERE task_id = $1 FOR UPDATE) old
                   WHERE t.task_id = $1 RETURNING old.state""",
                uuid.UUID(task_id),
                state.value,
                progress,
                step,
                error,
                frames_processed,
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
        async with self.pool.acquire() as conn:
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
        async with self.pool.acquire() as conn:
            return [_task_from_row(r) for r in await conn.fetch(sql, *args)]

    async def fail_unfinished_tasks(self, reason: str, task_ids: Sequence[str]) -> list[str]:
        """Mark those of ``task_ids`` still unfinished (left by a dead process) failed; returns their ids."""
        final = [s.value for s in TaskState if s.is_final]
        async with self.pool.acquire() as conn, conn.transaction():
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
        async with self.pool.acquire() as conn:
            return await conn.fetch(
                "SELECT camera_id, global_frame_index, local_id, global_id, x1, y1, x2, y2, score, map_x, map_y "
                "FROM track_points WHERE task_id = $1 ORDER BY global_frame_index, camera_id, local_id",
                uuid.UUID(task_id),
            )

    async def copy_track_points(self, rows: list[tuple]) -> None:
        """Plain COPY, no ledger: for bulk loads (and the raw baseline of bench/storage.py)."""
        async with self.pool.acquire() as conn:
            await conn.copy_records_to_table("track_points", records=rows, columns=TRACK_POINT_COLUMNS)

    async def write_track_point_batch(self, batch_id: uuid.UUID, rows: list[tuple]) -> bool:
        """COPY ``rows`` and record ``batch_id`` in the ledger, in one transaction.

        False, writing nothing, if the ledger already has ``batch_id``: the batch was committed
        before and only its acknowledgement was lost. BatchRejected if the rows themselves are
        refused (retrying cannot help).
        """
        async with self.pool.acquire() as conn, conn.transaction():
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
        async with self.pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM track_points WHERE task_id = $1", uuid.UUID(task_id))


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


def _homography_doc(h: Homography) -> dict[str, object]:
    return {
        "matrix": h.matrix.reshape(-1).tolist(),
        "image_points": [list(p) for p in h.image_points],
        "map_points": [list(p) for p in h.map_points],
    }


def _camera_from_row(row: asyncpg.Record, secrets: SecretBox) -> Camera:
    homography = None
    if row["homography"]:
        doc = json.loads(row["homography"])
        homography = Homography.from_matrix(
            np.asarray(doc["matrix"]).reshape(3, 3),
            np.asarray(doc["image_points"]) if doc["image_points"] else None,
            np.asarray(doc["map_points"]) if doc["map_points"] else None,
        )
    subs = tuple(SubVideo(Path(s["path"]), int(s["num_frames"])) for s in json.loads(row["sub_videos"]))
    where = f"camera {row['camera_id']!r} of environment {row['environment_id']!r}"
    password, query = open_sealed(secrets, row["source_secret"], row["source_password"], where)
    source = CameraSource(SourceKind(row["source_kind"]), row["source_url"], row["source_username"], password, query)
    return Camera(
        row["camera_id"],
        row["name"],
        row["fps"],
        row["width"],
        row["height"],
        homography,
        subs,
        group_id=row["group_id"],
        source=source,
        detection_threshold=row["detection_threshold"],
        location=row["location"],
        enabled=row["enabled"],
    )


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
