"""Where a camera's frames come from, and the rules for changing it.

The URL is stored without credentials; the user name and password sit beside it and are
joined only for a decoder (:meth:`CameraSource.decoder_url`). Secret-named query parameters
(``?pwd=...``) are kept the same way: the URL holds ``****`` in their place. Error messages
never quote a URL: one with unusual characters in its password could slip past masking.

A stored password (and query secret) is bound to the source's origin (scheme, host, port):
an update that moves the source elsewhere without giving the password again drops it, so a
changed URL can never send the old camera's password to a new host.
"""

from __future__ import annotations

import dataclasses
import enum
import urllib.parse
from collections.abc import Sequence

from spoton_inference.domain.errors import InvalidFields
from spoton_inference.domain.source_url import (
    MASK,
    fill_query_secrets,
    mask_text,
    split_query_secrets,
    with_credentials,
)


class SourceKind(enum.StrEnum):
    FILE = "file"
    RTSP = "rtsp"
    HTTP = "http"
    PUSH = "push"


SCHEMES = {SourceKind.RTSP: ("rtsp", "rtsps"), SourceKind.HTTP: ("http", "https")}
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}


@dataclasses.dataclass(frozen=True, slots=True)
class CameraSource:
    kind: SourceKind = SourceKind.PUSH
    url: str = ""
    username: str = ""
    # Kept out of repr so a logged camera never shows it.
    password: str = dataclasses.field(default="", repr=False)
    # (name, percent-encoded value) of each secret-named query parameter; ``url`` shows ****.
    query_secrets: tuple[tuple[str, str], ...] = dataclasses.field(default=(), repr=False)

    @classmethod
    def from_url(cls, url: str, username: str = "", password: str = "") -> CameraSource:
        """A live source from its URL alone (the scheme gives the kind; credentials in it move out)."""
        url = url.strip()
        try:
            scheme = urllib.parse.urlsplit(url).scheme.lower()
        except ValueError:  # e.g. an unclosed IPv6 bracket
            raise _bad("source.url", "source.url is not a valid URL (check the host and port)") from None
        kind = next((k for k, schemes in SCHEMES.items() if scheme in schemes), None)
        if kind is None:
            raise _bad("source.url", "source.url must start with rtsp://, rtsps://, http:// or https://")
        return resolve_source(SourceInput(kind, url, username, password or None), None)

    @classmethod
    def default_for(cls, sub_videos: Sequence[object]) -> CameraSource:
        """A camera's source when none is given: its sub-videos when it has any, else pushed frames."""
        return cls(SourceKind.FILE if sub_videos else SourceKind.PUSH)

    @property
    def is_live(self) -> bool:
        """Pulled by the service (rtsp, http) rather than read from files or pushed."""
        return self.kind in SCHEMES

    @property
    def password_set(self) -> bool:
        return bool(self.password or self.query_secrets)

    @property
    def origin(self) -> tuple[str, str, int]:
        """(scheme, host, port) the credentials are bound to."""
        return origin_of(self.url)

    @property
    def masked_url(self) -> str:
        return mask_text(self.decoder_url()) if self.url else ""

    def decoder_url(self) -> str:
        """The URL with its credentials, for the decoder only: never show or log it."""
        return with_credentials(fill_query_secrets(self.url, self.query_secrets), self.username, self.password)


@dataclasses.dataclass(frozen=True, slots=True)
class SourceInput:
    """A source as a client gives it. ``kind`` None keeps the current kind; ``password`` None
    keeps the stored password and "" removes it."""

    kind: SourceKind | None = None
    url: str = ""
    username: str = ""
    password: str | None = dataclasses.field(default=None, repr=False)


def resolve_source(given: SourceInput, current: CameraSource | None) -> CameraSource:
    """Validate ``given`` over ``current`` (None for a new camera); InvalidArgument names the field."""
    kind = given.kind or (current.kind if current else None)
    if kind is None:
        raise _bad("source.kind", "source.kind is required: file, rtsp, http or push")
    if kind not in SCHEMES:
        if given.url or given.username or given.password:
            raise _bad("source.url", f"source.url, username and password apply to rtsp and http sources, not {kind}")
        return CameraSource(kind)
    url, username, password = _split_credentials(kind, given)
    url, given_query = split_query_secrets(url)
    # Stored secrets go only to the origin they were given for.
    same_origin = current is not None and current.kind in SCHEMES and current.origin == origin_of(url)
    if password is None:
        password = current.password if same_origin and current else ""
    query: list[tuple[str, str]] = []
    stored = list(current.query_secrets) if same_origin and current else []
    for name, value in given_query:
        if value == MASK:  # "****" as shown: keep the stored value when there is one
            match = next((i for i, (n, _) in enumerate(stored) if n == name), None)
            if match is None:
                raise _bad("source.url", f"source.url's query parameter {name!r} has no stored value: give it")
            value = stored.pop(match)[1]
        query.append((name, value))
    return CameraSource(kind, url, username, password, tuple(query))


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``, with the scheme's default port filled in."""
    try:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").rstrip("."), parts.port or DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        return "", "", 0


def _split_credentials(kind: SourceKind, given: SourceInput) -> tuple[str, str, str | None]:
    """(url without userinfo, username, password or None) with credentials moved out of the URL."""
    schemes = SCHEMES[kind]
    if not given.url:
        raise _bad("source.url", f"source.url is required for a {kind} source ({' or '.join(schemes)}://host/...)")
    if any(c.isspace() for c in given.url):
        raise _bad("source.url", "source.url must not contain spaces (percent-encode them)")
    try:
        parts = urllib.parse.urlsplit(given.url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise _bad("source.url", "source.url is not a valid URL (check the host and port)") from None
    if parts.scheme.lower() not in schemes:
        raise _bad("source.url", f"source.url of a {kind} source must start with {' or '.join(schemes)}://")
    if not host:
        raise _bad("source.url", "source.url has no host")
    userinfo, at, netloc = parts.netloc.rpartition("@")
    if not at:
        return given.url, given.username, given.password
    if given.username or given.password:
        raise _bad(
            "source.username", "source.url carries credentials and source.username/password are set too; give them once"
        )
    user, colon, password = userinfo.partition(":")
    bare = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return bare, urllib.parse.unquote(user), urllib.parse.unquote(password) if colon else None


def _bad(field: str, message: str) -> InvalidFields:
    return InvalidFields("source", [(field, message)])
