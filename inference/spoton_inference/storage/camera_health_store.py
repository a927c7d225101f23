"""Camera health checks in PostgreSQL (migration 0007): write, read newest first, latest status, prune."""

from __future__ import annotations

import dataclasses
import datetime as dt

from spoton_inference.domain.camera_health import HealthCheck
from spoton_inference.storage.postgres import Database

_COLUMNS = "environment_id, camera_id, checked_at, status, latency_ms, fps, width, height, error"


class CameraHealthStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, check: HealthCheck) -> None:
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                f"INSERT INTO camera_health_checks ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                *dataclasses.astuple(check),
            )

    async def history(self, environment_id: str, camera_id: str, limit: int) -> list[HealthCheck]:
        """A camera's checks, newest first."""
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM camera_health_checks WHERE environment_id = $1 AND camera_id = $2 "
                "ORDER BY checked_at DESC LIMIT $3",
                environment_id,
                camera_id,
                limit,
            )
        return [HealthCheck(**dict(r)) for r in rows]

    async def latest_statuses(self) -> dict[tuple[str, str], str]:
        """Each camera's newest status ('online', 'offline' or 'degraded') by (environment_id, camera_id).

        A camera never checked is left out (the summary counts it as unknown); rows of deleted cameras
        (kept until pruned) come back too, and the caller ignores what it does not know.
        """
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT DISTINCT ON (environment_id, camera_id) environment_id, camera_id, status
                   FROM camera_health_checks ORDER BY environment_id, camera_id, checked_at DESC"""
            )
        return {(r["environment_id"], r["camera_id"]): r["status"] for r in rows}

    async def prune(self, older_than: dt.datetime) -> int:
        """Delete checks from before ``older_than``; returns how many."""
        async with self._db.pool.acquire() as conn:
            status = await conn.execute("DELETE FROM camera_health_checks WHERE checked_at < $1", older_than)
        return int(status.split()[-1])
