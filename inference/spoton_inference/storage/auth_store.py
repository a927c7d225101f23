"""API keys and users in PostgreSQL (tables ``api_keys`` and ``users``, migration 0010).

Only hashes are stored: the SHA-256 of a key's secret, the argon2id hash of a password.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import asyncpg

from spoton_inference.domain.principal import Role
from spoton_inference.services.auth import ApiKeyRecord, User

if TYPE_CHECKING:
    from spoton_inference.storage.postgres import Database

_KEY_COLUMNS = "key_id, name, role, environments, created_at, expires_at, revoked_at, last_used_at, bootstrap"


def _key(row: asyncpg.Record) -> ApiKeyRecord:
    return ApiKeyRecord(
        row["key_id"],
        row["name"],
        Role[row["role"].upper()],
        frozenset(row["environments"]),
        row["created_at"],
        row["expires_at"],
        row["revoked_at"],
        row["last_used_at"],
        row["bootstrap"],
    )


def _user(row: asyncpg.Record) -> User:
    return User(row["username"], Role[row["role"].upper()], frozenset(row["environments"]), row["created_at"])


class PostgresAuthStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_key(self, key_id: str) -> tuple[ApiKeyRecord, str] | None:
        async with self.db.pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {_KEY_COLUMNS}, secret_hash FROM api_keys WHERE key_id = $1", key_id)
        return None if row is None else (_key(row), row["secret_hash"])

    async def insert_key(self, record: ApiKeyRecord, secret_hash: str) -> None:
        async with self.db.pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO api_keys
                       (key_id, name, secret_hash, role, environments, created_at, expires_at, bootstrap)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                record.key_id,
                record.name,
                secret_hash,
                record.role.name.lower(),
                sorted(record.environments),
                record.created_at,
                record.expires_at,
                record.bootstrap,
            )

    async def upsert_bootstrap_key(self, record: ApiKeyRecord, secret_hash: str) -> None:
        """``record`` as the one bootstrap key: an earlier bootstrap key (another configured
        SPOTON_ADMIN_API_KEY) is revoked, so changing the setting rotates the key."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE bootstrap AND key_id <> $1 AND revoked_at IS NULL",
                record.key_id,
            )
            await conn.execute(
                """INSERT INTO api_keys (key_id, name, secret_hash, role, environments, bootstrap)
                   VALUES ($1, $2, $3, 'admin', '{}', true)
                   ON CONFLICT (key_id) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, role = 'admin',
                       environments = '{}', bootstrap = true, revoked_at = NULL, expires_at = NULL""",
                record.key_id,
                record.name,
                secret_hash,
            )

    async def has_admin_key(self) -> bool:
        async with self.db.pool.acquire() as conn:
            return bool(
                await conn.fetchval(
                    """SELECT EXISTS (SELECT 1 FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL
                       AND (expires_at IS NULL OR expires_at > now()))"""
                )
            )

    async def list_keys(self) -> list[ApiKeyRecord]:
        async with self.db.pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
        return [_key(row) for row in rows]

    async def revoke_key(self, key_id: str, at: dt.datetime) -> bool:
        async with self.db.pool.acquire() as conn:
            done = await conn.fetchval(
                "UPDATE api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL RETURNING true",
                key_id,
                at,
            )
        return bool(done)

    async def touch_key(self, key_id: str, at: dt.datetime) -> None:
        async with self.db.pool.acquire() as conn:
            await conn.execute("UPDATE api_keys SET last_used_at = $2 WHERE key_id = $1", key_id, at)

    async def get_user(self, username: str) -> tuple[User, str] | None:
        async with self.db.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT username, role, environments, created_at, password_hash FROM users WHERE username = $1",
                username,
            )
        return None if row is None else (_user(row), row["password_hash"])

    async def insert_user(self, user: User, password_hash: str) -> bool:
        async with self.db.pool.acquire() as conn:
            done = await conn.fetchval(
                """INSERT INTO users (username, password_hash, role, environments, created_at)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
                user.username,
                password_hash,
                user.role.name.lower(),
                sorted(user.environments),
                user.created_at,
            )
        return bool(done)

    async def list_users(self) -> list[User]:
        async with self.db.pool.acquire() as conn:
            rows = await conn.fetch("SELECT username, role, environments, created_at FROM users ORDER BY username")
        return [_user(row) for row in rows]

    async def delete_user(self, username: str) -> bool:
        async with self.db.pool.acquire() as conn:
            done = await conn.fetchval("DELETE FROM users WHERE username = $1 RETURNING true", username)
        return bool(done)
