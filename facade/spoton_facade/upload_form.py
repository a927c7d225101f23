"""A ``multipart/form-data`` job upload, spooled to disk as it arrives, never held in memory.

The ``file`` part streams into an unnamed temporary file (nothing is left behind, whatever
happens to the request) and the body is refused with 413 the moment the file passes the
limit, so an oversized upload does not fill the disk first. Text fields are small and kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import BinaryIO

from litestar.exceptions import ClientException, HTTPException
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

FILE_FIELD = "file"
TEXT_FIELDS = ("name", "fps", "detection_threshold", "homography", "zones")
MAX_FIELD_BYTES = 64 * 1024
# Part headers and text fields on top of the file: what a Content-Length may exceed the limit by.
FORM_OVERHEAD_BYTES = 1024 * 1024


@dataclasses.dataclass(slots=True)
class SpooledForm:
    fields: dict[str, str]
    filename: str = ""
    size_bytes: int = 0
    has_file: bool = False


async def spool_form(chunks: AsyncIterator[bytes], boundary: str, spool: BinaryIO, limit_bytes: int) -> SpooledForm:
    """Parse the body from ``chunks``: the file part into ``spool``, the text fields returned."""
    form = SpooledForm(fields={})
    text = bytearray()
    segment: MultipartSegment | None = None
    try:
        with PushMultipartParser(boundary, max_segment_count=len(TEXT_FIELDS) + 1) as parser:
            async for chunk in chunks:
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        segment = _start(part, form)
                        text.clear()
                    elif part is None:
                        if segment is not None and segment.name != FILE_FIELD:
                            form.fields[segment.name or ""] = text.decode(segment.charset or "utf-8")
                        segment = None
                    elif segment is not None and segment.name == FILE_FIELD:
                        form.size_bytes += len(part)
                        if form.size_bytes > limit_bytes:
                            raise HTTPException(
                                status_code=413,
                                detail=f"the file is larger than the limit of {limit_bytes} bytes "
                                "(SPOTON_JOB_MAX_UPLOAD_BYTES); send a shorter or more compressed video",
                            )
                        spool.write(part)
                    else:
                        text.extend(part)
                        if len(text) > MAX_FIELD_BYTES:
                            raise ClientException(f"form field {segment.name!r} is over {MAX_FIELD_BYTES} bytes")
                if parser.closed:
                    break
    except (ParserError, ParserLimitReached, UnicodeDecodeError) as exc:
        raise ClientException(f"not a valid multipart/form-data body: {exc}") from exc
    if not form.has_file:
        raise ClientException(f"no `{FILE_FIELD}` part: send the video as a file field named {FILE_FIELD!r}")
    spool.seek(0)
    return form


def _start(segment: MultipartSegment, form: SpooledForm) -> MultipartSegment:
    if segment.name == FILE_FIELD:
        if form.has_file:
            raise ClientException(f"send one `{FILE_FIELD}` part, not several")
        form.has_file = True
        form.filename = segment.filename or ""
    elif segment.name not in TEXT_FIELDS:
        raise ClientException(
            f"unknown form field {segment.name!r}; expected `{FILE_FIELD}` and optionally {', '.join(TEXT_FIELDS)}"
        )
    return segment
