"""The secrets ``docker-compose.yml`` mounts, generated once into a directory.

    python -m spoton_inference compose-secrets secrets/

writes one file per secret (the names the compose file's ``secrets:`` lists). PostgreSQL's
and Redis's passwords are written twice over: alone, for their servers, and inside the DSN
and URL the service reads, so the two always agree. Existing files are kept, so running it
again changes nothing. The directory is the owner's only (0700); the files in it are 0644,
because each container reads its bind-mounted file as its own user.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from spoton_inference.services.auth import new_api_key

PASSWORD_BYTES = 24
DIRECTORY_MODE, FILE_MODE = 0o700, 0o644


def generate(directory: Path) -> list[str]:
    """Write the secrets that are missing; the names of those written."""
    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    os.chmod(directory, DIRECTORY_MODE)
    postgres = _keep(directory, "postgres_password", lambda: secrets.token_urlsafe(PASSWORD_BYTES))
    redis = _keep(directory, "redis_password", lambda: secrets.token_urlsafe(PASSWORD_BYTES))
    values = {
        "spoton_admin_api_key": lambda: new_api_key().text,
        "spoton_jwt_secret": lambda: secrets.token_urlsafe(32),
        "spoton_secret_keys": lambda: Fernet.generate_key().decode(),
        "spoton_postgres_dsn": lambda: f"postgresql://spoton:{postgres}@timescaledb:5432/spoton",
        "spoton_redis_url": lambda: f"redis://:{redis}@redis:6379/0",
        # mosquitto's password for the user "spoton", and the secret of deploy/sinks.json's MQTT sink
        "mqtt_password": lambda: secrets.token_urlsafe(PASSWORD_BYTES),
        # MinIO's root password (user "spoton"), and the secret key the service reads recordings with
        "s3_secret_access_key": lambda: secrets.token_urlsafe(PASSWORD_BYTES),
    }
    written = [name for name, make in values.items() if _write_new(directory / name, make)]
    return written


def _keep(directory: Path, name: str, make: Callable[[], str]) -> str:
    path = directory / name
    _write_new(path, make)
    return path.read_text().strip()


def _write_new(path: Path, make: Callable[[], str]) -> bool:
    if path.exists():
        return False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w") as out:
        out.write(make() + "\n")
    os.chmod(path, FILE_MODE)  # whatever the umask
    return True
