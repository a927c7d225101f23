"""A ``multipart/form-data`` job upload, read as it arrives and never stored by the facade.

The text fields come first (:meth:`StreamedForm.head`); the ``file`` part's bytes then stream
on to the inference service as they arrive (:meth:`StreamedForm.file`), so the only copy of
the upload is the service's. A text field after the file is refused with 400 (its value would
come too late for the metadata the service needs first), and so is a body cut off before its
closing boundary, which cancels the upload. The file is refused with 413 the moment it passes
the limit, so an oversized upload does not fill the disk first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from litestar.exceptions import ClientException, HTTPException
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

FILE_FIELD = "file"
TEXT_FIELDS = ("name", "fps", "detection_threshold", "homography", "zones")
MAX_FIELD_BYTES = 64 * 1024
# Part headers and text fields on top of the file: what a Content-Length may exceed the limit by.
FORM_OVERHEAD_BYTES = 1024 * 1024

_Event = MultipartSegment | bytes | bytearray | None


@dataclasses.dataclass(frozen=True, slots=True)
class FormHead:
    """The text fields, and the file's name, read before the file's first byte."""

    fields: dict[str, str]
    filename: str


class StreamedForm:
    """One upload's body: :meth:`head` first, then :meth:`file` once."""

    def __init__(self, chunks: AsyncIterator[bytes], boundary: str, limit_bytes: int) -> None:
        self._events = _parse(chunks, boundary)
        self._limit = limit_bytes
        self.size_bytes = 0

    async def head(self) -> FormHead:
        """The text fields up to the ``file`` part; 400 when the body has none."""
        fields: dict[str, str] = {}
        text = bytearray()
        segment: MultipartSegment | None = None
        async for part in self._events:
            if isinstance(part, MultipartSegment):
                if part.name == FILE_FIELD:
                    return FormHead(fields, part.filename or "")
                if part.name not in TEXT_FIELDS:
                    raise _unknown(part)
                segment = part
                text.clear()
            elif part is None:
                if segment is not None:
                    fields[segment.name] = _decode(text, segment)
                segment = None
            else:
                text.extend(part)
                if len(text) > MAX_FIELD_BYTES:
                    raise ClientException(f"form field {segment and segment.name!r} is over {MAX_FIELD_BYTES} bytes")
        raise ClientException(f"no `{FILE_FIELD}` part: send the video as a file field named {FILE_FIELD!r}")

    async def file(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive, to the end of the body (which must hold nothing else)."""
        async for part in self._events:
            if isinstance(part, MultipartSegment):
                if part.name == FILE_FIELD:
                    raise ClientException(f"send one `{FILE_FIELD}` part, not several")
                if part.name in TEXT_FIELDS:
                    raise ClientException(
                        f"form field {part.name!r} comes after the `{FILE_FIELD}` part: send the text fields "
                        "first (the file streams on to the service as it arrives, after them)"
                    )
                raise _unknown(part)
            if part:
                self.size_bytes += len(part)
                if self.size_bytes > self._limit:
                    raise HTTPException(
                        status_code=413,
                        detail=f"the file is larger than the limit of {self._limit} bytes "
                        "(SPOTON_JOB_MAX_UPLOAD_BYTES); send a shorter or more compressed video",
                    )
                yield bytes(part)

    async def aclose(self) -> None:
        await self._events.aclose()


async def _parse(chunks: AsyncIterator[bytes], boundary: str) -> AsyncIterator[_Event]:
    """The parser's events over the whole body; 400 for a malformed or cut-off one."""
    try:
        parser = PushMultipartParser(boundary, max_segment_count=len(TEXT_FIELDS) + 1)
        async for chunk in chunks:
            for part in parser.parse(chunk):
                yield part
            if parser.closed:
                return
        parser.close()  # raises for a body that ended before its closing boundary
    except (ParserError, ParserLimitReached, UnicodeDecodeError) as exc:
        raise ClientException(f"not a valid multipart/form-data body: {exc}") from exc


def _decode(text: bytearray, segment: MultipartSegment) -> str:
    try:
        return text.decode(segment.charset or "utf-8")
    except UnicodeDecodeError as exc:
        raise ClientException(f"not a valid multipart/form-data body: {exc}") from exc


def _unknown(segment: MultipartSegment) -> ClientException:
    return ClientException(
        f"unknown form field {segment.name!r}; expected `{FILE_FIELD}` and optionally {', '.join(TEXT_FIELDS)}"
    )
