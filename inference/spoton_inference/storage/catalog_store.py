"""Catalogue writes that :class:`~spoton_inference.storage.postgres.Database` does not offer yet.

Kept apart so the catalogue CRUD lands without touching the shared Database module; the
cameras go with their environment through ``ON DELETE CASCADE``.
"""

from __future__ import annotations

from spoton_inference.storage.postgres import Database


async def delete_environment(db: Database, environment_id: str) -> bool:
    """Delete an environment and its cameras; False when there was no such environment."""
    async with db.pool.acquire() as conn:
        status = await conn.execute("DELETE FROM environments WHERE environment_id = $1", environment_id)
    return status != "DELETE 0"
