"""Where a camera's frames come from: its files, a live URL the service pulls, or client pushes.

The registry stores the URL and its credentials apart; :meth:`CameraSource.decoder_url`
joins them only for the decoder, and :attr:`CameraSource.masked_url` is what may be shown.

Example:
    >>> s = CameraSource("rtsp", "rtsp://10.0.0.5/live", "admin", "pw")
    >>> s.is_live, s.masked_url, s.decoder_url()
    (True, 'rtsp://admin:****@10.0.0.5/live', 'rtsp://admin:pw@10.0.0.5/live')
    >>> CameraSource.from_url("http://cam/mjpeg").kind
    'http'
"""

from __future__ import annotations

import dataclasses
import urllib.parse

from spoton_inference.core.errors import InvalidArgument
from spoton_inference.core.source_url import mask_url, with_credentials

KINDS = ("file", "rtsp", "http", "push")
LIVE_KINDS = ("rtsp", "http")  # pulled by the service
_SCHEMES = {"rtsp": ("rtsp", "rtsps"), "http": ("http", "https")}


@dataclasses.dataclass(frozen=True, slots=True)
class CameraSource:
    kind: str  # one of KINDS
    url: str = ""  # without credentials
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)

    @classmethod
    def from_url(cls, url: str, username: str = "", password: str = "") -> CameraSource:
        """A live source from its URL (credentials in it are moved out); InvalidArgument when malformed."""
        parts = urllib.parse.urlsplit(url.strip())
        kind = next((k for k, schemes in _SCHEMES.items() if parts.scheme.lower() in schemes), "")
        if not kind or not parts.hostname:
            raise InvalidArgument(
                f"source URL {mask_url(url)!r} is not an rtsp://, rtsps://, http:// or https:// URL with a host"
            )
        username = username or urllib.parse.unquote(parts.username or "")
        password = password or urllib.parse.unquote(parts.password or "")
        bare = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        return cls(kind, bare, username, password)

    @property
    def is_live(self) -> bool:
        return self.kind in LIVE_KINDS

    @property
    def masked_url(self) -> str:
        """The URL as it may be shown: with the user name, and ``****`` for a password."""
        return mask_url(self.decoder_url())

    def decoder_url(self) -> str:
        """The URL with its credentials, for the decoder only: never log or return it."""
        return with_credentials(self.url, self.username, self.password)
