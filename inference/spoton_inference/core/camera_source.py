"""Where a camera's frames come from, and the rules for changing it.

The URL is stored without credentials; the user name and password sit beside it and are
joined only for a decoder (:meth:`CameraSource.decoder_url`). Error messages never quote a
URL: one with unusual characters in its password could slip past masking.
"""

from __future__ import annotations

import dataclasses
import enum
import urllib.parse
from collections.abc import Sequence

from spoton_inference.core.errors import InvalidFields
from spoton_inference.core.source_url import mask_text, with_credentials


class SourceKind(enum.StrEnum):
    FILE = "file"
    RTSP = "rtsp"
    HTTP = "http"
    PUSH = "push"


SCHEMES = {SourceKind.RTSP: ("rtsp", "rtsps"), SourceKind.HTTP: ("http", "https")}


@dataclasses.dataclass(frozen=True, slots=True)
class CameraSource:
    kind: SourceKind = SourceKind.PUSH
    url: str = ""
    username: str = ""
    # Kept out of repr so a logged camera never shows it.
    password: str = dataclasses.field(default="", repr=False)

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
        return bool(self.password)

    @property
    def masked_url(self) -> str:
        return mask_text(self.decoder_url()) if self.url else ""

    def decoder_url(self) -> str:
        """The URL with its credentials, for the decoder only: never show or log it."""
        return with_credentials(self.url, self.username, self.password)


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
    if password is None:
        keep = current is not None and current.kind in SCHEMES
        password = current.password if keep and current else ""
    return CameraSource(kind, url, username, password)


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
