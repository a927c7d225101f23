"""Catalogue queries that :class:`~spoton_inference.storage.postgres.Database` does not offer:
deleting an environment, and camera groups (migration 0006).

An environment's cameras and groups go with it through ``ON DELETE CASCADE``.
"""

from __future__ import annotations

from spoton_inference.domain.environment import CameraGroup
from spoton_inference.storage.postgres import Database


class CatalogStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def delete_environment(self, environment_id: str) -> bool:
        """Delete an environment and its cameras; False when there was no such environment."""
        async with self._db.pool.acquire() as conn:
            status = await conn.execute("DELETE FROM environments WHERE environment_id = $1", environment_id)
        return status != "DELETE 0"

    async def list_groups(self) -> dict[str, tuple[CameraGroup, ...]]:
        """Every environment's camera groups, by environment id, in creation order."""
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT environment_id, group_id, name, description FROM camera_groups "
                "ORDER BY environment_id, created_at, group_id"
            )
        groups: dict[str, list[CameraGroup]] = {}
        for r in rows:
            groups.setdefault(r["environment_id"], []).append(CameraGroup(r["group_id"], r["name"], r["description"]))
        return {env_id: tuple(g) for env_id, g in groups.items()}

    async def upsert_group(self, environment_id: str, group: CameraGroup) -> None:
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO camera_groups (environment_id, group_id, name, description) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (environment_id, group_id)
                   DO UPDATE SET name = $3, description = $4, updated_at = now()""",
                environment_id,
                group.group_id,
                group.name,
                group.description,
            )

    async def delete_group(self, environment_id: str, group_id: str) -> None:
        """Delete a group; its cameras' group_id becomes NULL (the foreign key's ON DELETE SET NULL)."""
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM camera_groups WHERE environment_id = $1 AND group_id = $2", environment_id, group_id
            )
