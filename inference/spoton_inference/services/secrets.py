"""Secrets the server keeps: camera passwords encrypted at rest, and generated secret files.

Camera passwords are sealed with Fernet (``cryptography``: AES-128-CBC + HMAC-SHA256) under
the keys of ``SPOTON_SECRET_KEYS``: the first key encrypts, every key decrypts (MultiFernet),
so a key is rotated by putting a new one first, restarting (start-up re-encrypts every stored
password under the first key: :meth:`SecretBox.rotate`), then dropping the old one. With the
setting unset a key is generated once into ``<data_dir>/secrets/secret_key`` (owner-only).

Example:
    >>> box = SecretBox.from_keys([Fernet.generate_key().decode()])
    >>> token = box.seal("s3cret")
    >>> token != "s3cret" and box.open(token)
    's3cret'
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SECRETS_DIR = "secrets"
SECRET_KEY_FILE = "secret_key"
OWNER_ONLY = 0o600
OWNER_ONLY_DIR = 0o700
# Bytes of randomness in a generated password (PostgreSQL, Redis): 256 bits.
GENERATED_PASSWORD_BYTES = 32


class SecretKeyError(ValueError):
    """The configured keys are unusable, or a stored secret was sealed by a key no longer given."""


class SecretBox:
    """Seals and opens short secrets with the configured keys; never logs or quotes them."""

    def __init__(self, keys: Sequence[Fernet]) -> None:
        self._first = keys[0]
        self._keys = MultiFernet(list(keys))

    @classmethod
    def from_keys(cls, keys: Sequence[str]) -> SecretBox:
        if not keys:
            raise SecretKeyError("no secret key given: SPOTON_SECRET_KEYS needs at least one Fernet key")
        fernets = []
        for i, key in enumerate(keys):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except ValueError:
                # The key itself is never quoted: it is a secret even when malformed.
                raise SecretKeyError(
                    f"SPOTON_SECRET_KEYS key #{i + 1} is not a Fernet key (32 url-safe base64-encoded bytes; "
                    'make one with python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())")'
                ) from None
        return cls(fernets)

    @classmethod
    def for_data_dir(cls, keys: Sequence[str], data_dir: Path) -> SecretBox:
        """The configured keys, or else the key generated once under ``data_dir``."""
        if keys:
            return cls.from_keys(keys)
        key = read_or_create_secret(secret_path(data_dir, SECRET_KEY_FILE), lambda: Fernet.generate_key().decode())
        return cls.from_keys([key])

    @classmethod
    def ephemeral(cls) -> SecretBox:
        """A box with a key that lives only in this process (tools and tests that never restart)."""
        return cls.from_keys([Fernet.generate_key().decode()])

    def seal(self, plain: str) -> str:
        """``plain`` encrypted under the first key; "" stays "" (no password)."""
        return self._keys.encrypt(plain.encode()).decode() if plain else ""

    def open(self, token: str, what: str = "a stored secret") -> str:
        if not token:
            return ""
        try:
            return self._keys.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"{what} cannot be decrypted with any key of SPOTON_SECRET_KEYS (or <data_dir>/secrets/secret_key): "
                "put back the key it was sealed with (keep old keys after the new first one until start-up has "
                "re-encrypted everything), or give the password again"
            ) from None

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is sealed under the first key already (nothing to rotate)."""
        try:
            self._first.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str, what: str = "a stored secret") -> str:
        """``token`` re-encrypted under the first key (unchanged secret)."""
        if not token:
            return ""
        try:
            return self._keys.rotate(token.encode()).decode()
        except InvalidToken:
            self.open(token, what)  # raises the explained error
            raise


def secret_path(data_dir: Path, name: str) -> Path:
    return data_dir / SECRETS_DIR / name


def generate_password() -> str:
    """A random password safe in a URL's userinfo without quoting (url-safe base64)."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def read_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in ``path``, made by ``make`` and written owner-only (0600) the first time.

    Written to a private temporary file, then hard-linked into place (which fails if the name
    exists), so two processes starting together agree on one secret and none reads half of it.
    """
    path.parent.mkdir(mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)
    os.chmod(path.parent, OWNER_ONLY_DIR)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(make() + "\n")
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            tmp.unlink(missing_ok=True)
    value = path.read_text().strip()
    if not value:
        raise SecretKeyError(f"{path} is empty: delete it to have a new secret generated")
    return value
