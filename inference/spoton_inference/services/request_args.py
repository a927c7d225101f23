"""Checks and encodings of request arguments that several services share: ids, page tokens,
camera selections, directories on the server."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Sequence
from pathlib import Path

from spoton_inference.domain.environment import Environment
from spoton_inference.domain.errors import InvalidArgument, NotFound


def parse_uuid(value: str, what: str) -> str:
    """``value`` in canonical form; InvalidArgument names it as ``what`` (e.g. "task id")."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(f"{what} {value!r} is not a UUID") from None


def server_directory(path: str, what: str) -> Path:
    """``path`` as an existing directory on this server: InvalidArgument when it cannot name one
    (a name too long, an unknown ``~user``), NotFound when there is none; ``what`` says what it
    should hold."""
    if not path:
        raise InvalidArgument(f"path is required: {what}")
    try:
        directory = Path(path).expanduser()
        found = directory.is_dir()
    except (OSError, RuntimeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidArgument(f"path {path[:200]!r} cannot name a directory on this server: {reason}") from None
    if not found:
        raise NotFound(f"no such directory on the server: {path}")
    return directory


def encode_token(created_at: dt.datetime, row_id: str) -> str:
    """The page token after the row (created_at, row_id) of a newest-first keyset listing."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode()


def encode_id_token(tag: str, row_id: int) -> str:
    """The page token after row ``row_id`` of an id-ordered listing; ``tag`` names the listing,
    so a token of one listing is refused by another.

    >>> decode_id_token("audit", encode_id_token("audit", 42))
    42
    """
    return base64.urlsafe_b64encode(f"{tag}|{row_id}".encode()).decode()


def decode_id_token(tag: str, token: str) -> int:
    """The row id in a token :func:`encode_id_token` made with ``tag``; InvalidArgument otherwise."""
    try:
        found, row_id = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        if found != tag:
            raise ValueError(found)
        return int(row_id)
    except ValueError:
        raise InvalidArgument("page_token is not one this server issued") from None


def decode_token(token: str) -> tuple[dt.datetime, str]:
    try:
        created, row_id = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        return dt.datetime.fromisoformat(created), str(uuid.UUID(row_id))
    except ValueError:
        raise InvalidArgument("page_token is not one this server issued") from None


def known_cameras(env: Environment, camera_ids: Sequence[str]) -> tuple[str, ...]:
    """``camera_ids``, once each is known to be a camera of ``env``."""
    unknown = sorted(c for c in set(camera_ids) if env.camera(c) is None)
    if unknown:
        raise InvalidArgument(
            f"cameras {unknown} are not in environment {env.environment_id!r} "
            f"(it has {[c.camera_id for c in env.cameras]})"
        )
    return tuple(camera_ids)
