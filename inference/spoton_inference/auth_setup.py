"""Authentication's wiring: the authenticator from settings, the secrets kept under
``<data_dir>/secrets`` (owner-only), and on first start the bootstrap admin key and the
dashboard's admin user."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
from pathlib import Path

from spoton_inference.services.auth import BOOTSTRAP_USERNAME, Authenticator, OidcVerifier, TokenCodec
from spoton_inference.settings import Settings
from spoton_inference.storage.auth_store import PostgresAuthStore
from spoton_inference.storage.postgres import Database

log = logging.getLogger(__name__)

SECRETS_DIR = "secrets"
JWT_SECRET_FILE = "jwt_secret"
ADMIN_KEY_FILE = "admin_api_key"
ADMIN_PASSWORD_FILE = "admin_password"
JWT_SECRET_BYTES = 32
BOOTSTRAP_BANNER = "SpotOn admin API key (shown once)"


def secrets_dir(settings: Settings) -> Path:
    return settings.data_dir / SECRETS_DIR


def admin_key_path(data_dir: Path) -> Path:
    """Where the first start writes the admin key it created (read by `spoton serve`/`demo`)."""
    return data_dir / SECRETS_DIR / ADMIN_KEY_FILE


def write_secret(path: Path, value: str) -> None:
    """``value`` into ``path``, readable by the owner only, from the first byte on."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise


def read_secret(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def jwt_secret(settings: Settings) -> str:
    """SPOTON_JWT_SECRET, else the one generated on first start (kept, so tokens outlive restarts)."""
    if settings.jwt_secret:
        return settings.jwt_secret
    path = secrets_dir(settings) / JWT_SECRET_FILE
    stored = read_secret(path)
    if stored is None:
        stored = secrets.token_urlsafe(JWT_SECRET_BYTES)
        write_secret(path, stored)
    return stored


def build_authenticator(settings: Settings, db: Database) -> Authenticator | None:
    """None when authentication is off (SPOTON_AUTH_ENABLED=false)."""
    if not settings.auth_enabled:
        log.warning("authentication is OFF (SPOTON_AUTH_ENABLED=false): every caller acts as an admin")
        return None
    oidc = (
        OidcVerifier(settings.oidc_issuer, settings.oidc_audience, settings.oidc_role_claim)
        if settings.oidc_issuer
        else None
    )
    return Authenticator(PostgresAuthStore(db), TokenCodec(jwt_secret(settings), settings.access_token_ttl_s), oidc)


async def bootstrap_admin(auth: Authenticator | None, settings: Settings) -> None:
    """SPOTON_ADMIN_API_KEY as the admin key; else, on the first start, a new admin key shown
    once on stderr and kept in <data_dir>/secrets/admin_api_key for the local tools."""
    if auth is None:
        return
    password = await auth.bootstrap_user()
    if password is not None:
        password_path = secrets_dir(settings) / ADMIN_PASSWORD_FILE
        write_secret(password_path, password)
        print(
            f"SpotOn dashboard login (shown once): {BOOTSTRAP_USERNAME} / {password}\n"
            f"  (also in {password_path}, owner-only)",
            file=sys.stderr,
            flush=True,
        )
    created = await auth.bootstrap(settings.admin_api_key)
    if created is None:
        return
    path = admin_key_path(settings.data_dir)
    write_secret(path, created)
    print(
        f"{BOOTSTRAP_BANNER}: {created}\n"
        f"  (also in {path}, owner-only). Send it as 'authorization: Bearer <key>' gRPC metadata,\n"
        "  or set SPOTON_ADMIN_API_KEY to choose the admin key yourself.",
        file=sys.stderr,
        flush=True,
    )
