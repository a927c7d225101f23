"""Multipart job uploads: the text fields first, then the file's bytes as they arrive, with the limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.exceptions import ClientException, HTTPException

from spoton_facade.upload_form import StreamedForm

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


async def _read(body: bytes, limit_bytes: int = 1000) -> tuple[dict[str, str], str, bytes]:
    form = StreamedForm(_stream(body), BOUNDARY, limit_bytes)
    head = await form.head()
    data = b"".join([chunk async for chunk in form.file()])
    return head.fields, head.filename, data


async def test_the_fields_come_first_then_the_file_as_it_arrives() -> None:
    video = bytes(range(256)) * 40
    body = _body(("name", None, b"Hall \xc3\xa9"), ("fps", None, b"12.5"), ("file", "clip.mp4", video))
    fields, filename, data = await _read(body, limit_bytes=len(video))
    assert (fields, filename, data) == ({"name": "Hall é", "fps": "12.5"}, "clip.mp4", video)


async def test_the_head_is_read_before_the_file_s_bytes_arrive() -> None:
    """The metadata goes to the service before the file has arrived: nothing waits for its end."""
    fed = []

    async def endless() -> AsyncIterator[bytes]:
        yield _body(("name", None, b"x"))[: -len(f"--{BOUNDARY}--\r\n")]
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'.encode()
        while True:
            fed.append(1)
            yield b"\0" * 100

    form = StreamedForm(endless(), BOUNDARY, limit_bytes=10_000)
    assert (await form.head()).fields == {"name": "x"}
    chunks = form.file()
    assert await anext(chunks) and len(fed) <= 2
    await form.aclose()


async def test_a_file_over_the_limit_is_413_as_soon_as_it_passes() -> None:
    consumed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal consumed
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'.encode()
        while True:
            consumed += 1000
            yield b"\0" * 1000

    form = StreamedForm(endless(), BOUNDARY, limit_bytes=10_000)
    await form.head()
    with pytest.raises(HTTPException) as err:
        async for _ in form.file():
            pass
    assert err.value.status_code == 413 and "10000 bytes" in err.value.detail
    assert consumed <= 12_000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body(("name", None, b"x")), "no `file` part"),
        (_body(("file", "a.mp4", b"1"), ("file", "b.mp4", b"2")), "one `file` part"),
        (_body(("colour", None, b"red"), ("file", "a.mp4", b"1")), "unknown form field 'colour'"),
        (_body(("file", "a.mp4", b"1"), ("colour", None, b"red")), "unknown form field 'colour'"),
        (_body(("file", "a.mp4", b"1"), ("fps", None, b"5")), "send the text fields first"),
        (_body(("file", "a.mp4", b"1"))[:-10], "not a valid multipart"),
    ],
    ids=["no-file", "two-files", "unknown-field", "unknown-field-after", "field-after-file", "cut-off"],
)
async def test_malformed_forms_are_400(body: bytes, message: str) -> None:
    with pytest.raises(ClientException, match=message):
        await _read(body)
