"""Files under the media root: safe lookup, byte ranges, validators and content types.

Range support is RFC 9110 single-range only: ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n``.
A request for several ranges is refused with 416 rather than answered with
``multipart/byteranges``: browsers' media elements ask for one range at a time, and a 416 is
clearer to a client than a silently full 200.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import mimetypes
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

CHUNK_BYTES = 256 * 1024

# Explicit types for what the inference service publishes; the system's mime table varies.
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}

_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
# Bytes read from the start of a file to tell its container: enough for RIFF's form type.
SNIFF_BYTES = 12
# Containers a video named ``.mp4`` may really be (one published before the service made every
# video browser-playable): served as what they are, not as MP4, which would never play.
_VIDEO_SIGNATURES = (
    # (file start, form type at offset 8 or b"", what it is)
    (b"RIFF", b"AVI ", "video/x-msvideo"),
    (b"\x1a\x45\xdf\xa3", b"", "video/x-matroska"),
)


class RangeNotSatisfiable(ValueError):
    """The Range header cannot be served: malformed, several ranges, or past the end."""


@dataclasses.dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` to ``end`` of a file, both inclusive, as HTTP counts them."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """How many bytes the range covers."""
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value for this range of a ``size``-byte file."""
        return f"bytes {self.start}-{self.end}/{size}"


def resolve(root: Path, relative: str) -> Path | None:
    """The regular file ``relative`` names under ``root``, or ``None``.

    ``None`` also covers every way out of the root: ``..`` segments, absolute paths and
    symlinks pointing outside, because the check is made on the fully resolved path.
    """
    base = root.resolve()
    try:
        candidate = (base / relative.lstrip("/")).resolve(strict=True)
    except (OSError, ValueError):  # missing, a loop, or a NUL byte in the name
        return None
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


def parse_range(header: str, size: int) -> ByteRange | None:
    """The single byte range ``header`` asks for, clamped to a ``size``-byte file.

    Returns ``None`` for a unit other than ``bytes``, which RFC 9110 says to ignore (the whole
    file is served). Raises :class:`RangeNotSatisfiable` otherwise when it cannot be served.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        raise RangeNotSatisfiable("only a single byte range is supported")
    match = _RANGE_SPEC.fullmatch(spec.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeNotSatisfiable(f"malformed range {header!r}")
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"range {header!r} selects no bytes")
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    end = size - 1 if last == "" else int(last)
    if end < start:
        raise RangeNotSatisfiable(f"malformed range {header!r}")
    if start >= size:
        raise RangeNotSatisfiable(f"range {header!r} starts past the end of a {size}-byte file")
    return ByteRange(start, min(end, size - 1))


def etag_matches(if_none_match: str, etag: str) -> bool:
    """``If-None-Match`` against ``etag``, with the weak comparison RFC 9110 prescribes."""
    tags = (tag.strip() for tag in if_none_match.split(","))
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in tags)


def if_range_holds(if_range: str, etag: str, last_modified: str) -> bool:
    """Whether ``If-Range`` still names this file, so the Range may be honoured.

    An entity tag must match strongly (a weak one never does); a date must be the
    ``Last-Modified`` value this file is served with, as clients echo it back verbatim.
    """
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    return value == last_modified


def content_type(path: Path, head: bytes = b"") -> str:
    """The ``Content-Type`` to serve ``path`` with; SpotOn writes its text files in UTF-8.

    ``head``, the file's first bytes, overrides the name for an ``.mp4`` that is another
    container:

    >>> content_type(Path("a.mp4"), b"\\x00\\x00\\x00\\x20ftypisom")
    'video/mp4'
    >>> content_type(Path("a.mp4"), b"RIFF\\x10\\x00\\x00\\x00AVI ")
    'video/x-msvideo'
    """
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        for magic, form, sniffed in _VIDEO_SIGNATURES:
            if head.startswith(magic) and (not form or head[8:12] == form):
                return sniffed
    known = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0]
    return known or "application/octet-stream"


class MediaFile:
    """An open file with its validators; the ETag and size come from the open descriptor.

    Taking them from the descriptor (not the path) keeps them true to the bytes that are read,
    even if the file is replaced meanwhile.
    """

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        stat = os.fstat(self._file.fileno())
        self.size = stat.st_size
        self.etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        self.last_modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
        self.content_type = content_type(path, os.pread(self._file.fileno(), SNIFF_BYTES, 0))

    @classmethod
    async def open(cls, path: Path) -> MediaFile:
        """Open ``path`` off the event loop."""
        return await asyncio.to_thread(cls, path)

    async def chunks(self, start: int, length: int) -> AsyncIterator[bytes]:
        """``length`` bytes from ``start``, in chunks read off the event loop; then close."""
        fd = self._file.fileno()
        try:
            while length > 0:
                chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK_BYTES, length), start)
                if not chunk:  # truncated since it was opened
                    return
                start += len(chunk)
                length -= len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        self._file.close()

    async def aclose(self) -> None:
        """:meth:`close`, as a coroutine for response background tasks."""
        self.close()
