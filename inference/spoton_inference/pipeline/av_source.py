"""Opening a live camera URL with PyAV (FFmpeg), within time limits, and saying why it failed.

Every call here blocks: run it in a worker thread. Open and each later read are bounded by
PyAV's interrupt timeout, so a server that accepts and then goes silent cannot hold a thread
forever. Failures become a :class:`SourceError` whose ``reason`` names the cause a user can
act on (authentication, refused, timeout, not a video, host not found) with any credentials
masked: FFmpeg's own messages quote the URL they opened, password included.
"""

from __future__ import annotations

import socket
import time
import urllib.parse

import av
import av.error
from av.container import InputContainer
from av.video.stream import VideoStream

from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.source_url import mask_text

# Failure kinds, stable for API clients.
AUTH, REFUSED, TIMEOUT, NOT_FOUND, NOT_VIDEO, HOST_NOT_FOUND, ENDED, ERROR = (
    "auth",
    "refused",
    "timeout",
    "not_found",
    "not_video",
    "host_not_found",
    "ended",
    "error",
)


class SourceError(Exception):
    """A live source could not be opened or read; ``str()`` is the masked reason."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(mask_text(reason))
        self.kind = kind

    @property
    def reason(self) -> str:
        return str(self)


def open_source(source: CameraSource, timeout_s: float) -> tuple[InputContainer, VideoStream]:
    """Open ``source`` and find its video stream; SourceError with the reason when that fails."""
    where = _host_port(source)
    _resolve(source, where)
    options = {"rtsp_transport": "tcp"} if source.kind == "rtsp" else {}
    started = time.monotonic()
    try:
        container = av.open(source.decoder_url(), options=options, timeout=(timeout_s, timeout_s))
    except Exception as exc:
        raise describe(exc, where, timeout_s, time.monotonic() - started) from None
    if not container.streams.video:
        container.close()
        raise SourceError(NOT_VIDEO, f"{where} answered, but its stream has no video")
    return container, container.streams.video[0]


def describe(exc: BaseException, where: str, timeout_s: float, elapsed_s: float) -> SourceError:
    """The user-facing reason for a failure to open or read the source at ``where``."""
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return SourceError(AUTH, f"authentication failed at {where}: check the camera's user name and password")
    if isinstance(exc, av.error.HTTPNotFoundError):
        return SourceError(NOT_FOUND, f"{where} has no stream at that path (404): check the URL's path")
    if isinstance(exc, ConnectionRefusedError):
        return SourceError(REFUSED, f"connection refused by {where}: nothing listens there, or a firewall refuses")
    # FFmpeg's interrupt reports a timeout as "exit requested" or, for RTSP, as invalid data.
    if isinstance(exc, av.error.ExitError | TimeoutError) or elapsed_s >= timeout_s * 0.95:
        return SourceError(TIMEOUT, f"no answer from {where} within {timeout_s:g} s")
    if isinstance(exc, av.error.InvalidDataError):
        return SourceError(NOT_VIDEO, f"{where} answered, but not with a video stream FFmpeg can read")
    return SourceError(ERROR, f"cannot read {where}: {type(exc).__name__}: {exc}")


def _host_port(source: CameraSource) -> str:
    parts = urllib.parse.urlsplit(source.url)
    default = 554 if source.kind == "rtsp" else 443 if parts.scheme == "https" else 80
    return f"{parts.hostname}:{parts.port or default}"


def _resolve(source: CameraSource, where: str) -> None:
    """A host name that does not resolve is named as such (FFmpeg says only 'I/O error')."""
    host = urllib.parse.urlsplit(source.url).hostname or ""
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        raise SourceError(HOST_NOT_FOUND, f"host {host!r} not found ({where}): check the URL's host name") from None
