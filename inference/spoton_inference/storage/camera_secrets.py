"""Camera secrets in PostgreSQL: sealed on write, opened on read, re-sealed at start-up.

``cameras.source_secret`` holds one Fernet token (services/secrets.py) of the source's password and
secret query values. At start-up :func:`seal_stored_secrets` seals plain-text passwords left by
versions before migration 0012 and re-encrypts tokens sealed under an older key, which is how a
key rotation completes (put the new key first in SPOTON_SECRET_KEYS, restart, drop the old).
"""

from __future__ import annotations

import logging

import asyncpg
import msgspec

from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.services.secrets import SecretBox

log = logging.getLogger(__name__)


QuerySecrets = tuple[tuple[str, str], ...]


class _Sealed(msgspec.Struct, frozen=True):
    password: str = ""
    query: QuerySecrets = ()


def seal_source(box: SecretBox, source: CameraSource) -> str:
    """The token to store for ``source``'s secrets; "" when it has none."""
    if not source.password and not source.query_secrets:
        return ""
    return box.seal(msgspec.json.encode(_Sealed(source.password, source.query_secrets)).decode())


def open_sealed(box: SecretBox, token: str, legacy_password: str, where: str) -> tuple[str, QuerySecrets]:
    """(password, query secrets) of a stored row; ``legacy_password`` is a not-yet-sealed one."""
    if not token:
        return legacy_password, ()
    sealed = msgspec.json.decode(box.open(token, f"the password of {where}"), type=_Sealed)
    return sealed.password, sealed.query


async def seal_stored_secrets(conn: asyncpg.Connection, box: SecretBox) -> int:
    """Seal plain-text passwords and re-encrypt old-key tokens under the first key; the count changed.

    Raises SecretKeyError naming the camera when a token opens with no configured key.
    """
    rows = await conn.fetch(
        """SELECT environment_id, camera_id, source_password, source_secret FROM cameras
           WHERE source_password <> '' OR source_secret <> ''"""
    )
    changed = 0
    async with conn.transaction():
        for row in rows:
            where = f"camera {row['camera_id']!r} of environment {row['environment_id']!r}"
            plain, token = row["source_password"], row["source_secret"]
            if token and not plain and box.is_current(token):
                continue
            if token:
                sealed = box.rotate(token, f"the password of {where}")
            else:
                sealed = box.seal(msgspec.json.encode(_Sealed(plain)).decode())
            await conn.execute(
                """UPDATE cameras SET source_secret = $3, source_password = ''
                   WHERE environment_id = $1 AND camera_id = $2""",
                row["environment_id"],
                row["camera_id"],
                sealed,
            )
            changed += 1
    if changed:
        log.info("sealed or re-encrypted %d stored camera passwords under the first secret key", changed)
    return changed
