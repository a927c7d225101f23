"""Versioned schema migrations: ``migrations/NNNN_name.sql``, each applied once, in order.

Applying is idempotent (already-applied versions are skipped) and serialised across
replicas by an advisory lock, so two services starting together do not race. A version may
also have a hook (``HOOKS``): Python run right after its SQL, in the same transaction, for a
step that depends on the server (e.g. whether TimescaleDB is there).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from spoton_inference.storage.partitioning import convert_track_points

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")
# Arbitrary constant naming our advisory lock.
_LOCK_KEY = 0x5907_0001
HOOKS: dict[int, Callable[[asyncpg.Connection], Awaitable[None]]] = {3: convert_track_points}


def available_migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, str, Path]]:
    found = []
    for path in directory.glob("*.sql"):
        m = _NAME.match(path.name)
        if m:
            found.append((int(m.group(1)), m.group(2), path))
    return sorted(found)


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, path in available_migrations(directory):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                if version in HOOKS:
                    await HOOKS[version](conn)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
