"""Multipart job uploads: the file part goes to the spool as it streams, with the limit."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator

import pytest
from litestar.exceptions import ClientException, HTTPException

from spoton_facade.upload_form import spool_form

BOUNDARY = "xyz"


def _body(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def _stream(body: bytes, chunk: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(body), chunk):  # small chunks: parts straddle them
        yield body[i : i + chunk]
    yield b""  # Litestar's request.stream() ends so


async def test_the_file_goes_to_the_spool_and_the_fields_are_kept() -> None:
    video = bytes(range(256)) * 40
    body = _body(("name", None, b"Hall \xc3\xa9"), ("file", "clip.mp4", video), ("fps", None, b"12.5"))
    with tempfile.TemporaryFile() as spool:
        form = await spool_form(_stream(body), BOUNDARY, spool, limit_bytes=len(video))
        assert spool.read() == video
    assert (form.filename, form.size_bytes, form.has_file) == ("clip.mp4", len(video), True)
    assert form.fields == {"name": "Hall é", "fps": "12.5"}


async def test_a_file_over_the_limit_is_413_as_soon_as_it_passes() -> None:
    consumed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal consumed
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'.encode()
        while True:
            consumed += 1000
            yield b"\0" * 1000

    with tempfile.TemporaryFile() as spool, pytest.raises(HTTPException) as err:
        await spool_form(endless(), BOUNDARY, spool, limit_bytes=10_000)
    assert err.value.status_code == 413 and "10000 bytes" in err.value.detail
    assert consumed <= 12_000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body(("name", None, b"x")), "no `file` part"),
        (_body(("file", "a.mp4", b"1"), ("file", "b.mp4", b"2")), "one `file` part"),
        (_body(("file", "a.mp4", b"1"), ("colour", None, b"red")), "unknown form field 'colour'"),
        (_body(("file", "a.mp4", b"1"))[:-10], "not a valid multipart"),
    ],
    ids=["no-file", "two-files", "unknown-field", "cut-off"],
)
async def test_malformed_forms_are_400(body: bytes, message: str) -> None:
    with tempfile.TemporaryFile() as spool, pytest.raises(ClientException, match=message):
        await spool_form(_stream(body), BOUNDARY, spool, limit_bytes=1000)
