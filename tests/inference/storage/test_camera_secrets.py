"""Camera passwords at rest: plain-text rows from before migration 0012 are sealed at start-up,
rotating SPOTON_SECRET_KEYS re-encrypts them, and a key dropped too early is named, not guessed."""

from __future__ import annotations

import shutil
import uuid

import asyncpg
import pytest
from cryptography.fernet import Fernet

from spoton_inference.services.secrets import SecretBox, SecretKeyError
from spoton_inference.storage.environment_store import EnvironmentStore
from spoton_inference.storage.migrate import MIGRATIONS_DIR, migrate
from spoton_inference.storage.postgres import Database

SECRETS_VERSION = 12
PASSWORD = "plain-old-pa55"


@pytest.fixture
async def dsn(postgres):
    name = f"secrets_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.dsn_for("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return postgres.dsn_for(name)


async def _row(dsn: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow("SELECT source_password, source_secret FROM cameras WHERE camera_id = 'door'")
    finally:
        await conn.close()


async def _password(dsn: str, box: SecretBox) -> str:
    db = await Database.connect(dsn, secrets=box)
    try:
        [env] = await EnvironmentStore(db).list_environments()
        return env.cameras[0].source.password
    finally:
        await db.close()


async def test_a_plain_text_row_is_sealed_at_start_up_and_the_key_rotates(dsn, tmp_path):
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) < SECRETS_VERSION:
            shutil.copy(path, tmp_path / path.name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, tmp_path)  # a database as an older version left it
        await conn.execute("INSERT INTO environments (environment_id, name) VALUES ('old', 'Old')")
        await conn.execute(
            """INSERT INTO cameras (environment_id, camera_id, name, fps, width, height, position,
                                    source_kind, source_url, source_username, source_password)
               VALUES ('old', 'door', 'Door', 10, 0, 0, 0, 'rtsp', 'rtsp://10.0.0.5/live', 'admin', $1)""",
            PASSWORD,
        )
    finally:
        await conn.close()

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert await _password(dsn, SecretBox.from_keys([old_key])) == PASSWORD
    plain, sealed = await _row(dsn)
    assert plain == "" and sealed and PASSWORD not in sealed

    # Rotation: the new key first, the old one after it; start-up re-encrypts under the new one.
    assert await _password(dsn, SecretBox.from_keys([new_key, old_key])) == PASSWORD
    _, rotated = await _row(dsn)
    assert rotated != sealed and SecretBox.from_keys([new_key]).is_current(rotated)
    assert await _password(dsn, SecretBox.from_keys([new_key])) == PASSWORD  # the old key dropped

    # A key dropped before the rotation ran: start-up says which camera and what to do.
    with pytest.raises(SecretKeyError, match=r"camera 'door' of environment 'old'.*put back the key"):
        await Database.connect(dsn, secrets=SecretBox.from_keys([old_key]))
