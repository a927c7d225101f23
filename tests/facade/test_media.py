"""Media serving: byte ranges, validators, content types and confinement to the media root."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated

import pytest
from litestar import Litestar, get
from litestar.params import FromPath, HeaderParameter
from litestar.response import Stream
from litestar.testing import AsyncTestClient

from spoton_facade import media
from spoton_facade.contract import refuse_nul
from spoton_facade.problems import EXCEPTION_HANDLERS
from spoton_facade.routes.media import serve_file

Client = AsyncTestClient[Litestar]
VIDEO = "tasks/t1/environments/e1/cameras/c1/sub_videos/sub_video_01.mp4"
URL = "/api/v1/media/" + VIDEO
# Bigger than one read chunk, and not a multiple of it, so streaming crosses chunk borders.
DATA = os.urandom(media.CHUNK_BYTES * 2 + 12345)
SIZE = len(DATA)


@pytest.fixture
async def client(media_root: Path) -> AsyncIterator[Client]:
    """The media route's file serving on its own: whether a caller may read a file is the
    service's to say (tested over the real stack in test_auth.py), not this module's."""

    @get("/api/v1/media/{path:path}")
    async def serve(
        path: FromPath[str],
        range_header: Annotated[str | None, HeaderParameter(name="Range")] = None,
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
        if_range: Annotated[str | None, HeaderParameter(name="If-Range")] = None,
    ) -> Stream:
        return await serve_file(media_root, path, range_header, if_none_match, if_range)

    app = Litestar([serve], middleware=[refuse_nul], exception_handlers=EXCEPTION_HANDLERS)
    async with AsyncTestClient(app) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def video(write_media: Callable[[str, bytes], Path]) -> Path:
    return write_media(VIDEO, DATA)


async def test_full_file(client: Client) -> None:
    response = await client.get(URL)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"].startswith('"')  # strong
    assert "last-modified" in response.headers


async def test_ranges_reassemble_the_file(client: Client) -> None:
    step = 100_000
    parts = []
    for start in range(0, SIZE, step):
        end = min(start + step, SIZE) - 1
        response = await client.get(URL, headers={"Range": f"bytes={start}-{end}"})
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
        assert response.headers["content-length"] == str(end - start + 1)
        parts.append(response.content)
    assert b"".join(parts) == DATA


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=-500", SIZE - 500, SIZE - 1),  # suffix
        (f"bytes=-{SIZE + 10}", 0, SIZE - 1),  # suffix longer than the file
        ("bytes=100-", 100, SIZE - 1),  # open
        ("bytes=10-99999999999", 10, SIZE - 1),  # end clamped
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),  # last byte
        ("BYTES = 0-0", 0, 0),
    ],
)
async def test_range_forms(client: Client, spec: str, start: int, end: int) -> None:
    response = await client.get(URL, headers={"Range": spec})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.content == DATA[start : end + 1]


@pytest.mark.parametrize(
    "spec",
    [
        f"bytes={SIZE}-",
        f"bytes={SIZE + 5}-{SIZE + 10}",
        "bytes=-0",
        "bytes=5-2",
        "bytes=abc",
        "bytes=-",
        "bytes=0-1,5-6",
    ],
)
async def test_unsatisfiable_ranges(client: Client, spec: str) -> None:
    response = await client.get(URL, headers={"Range": spec})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 416


async def test_unknown_range_unit_serves_whole_file(client: Client) -> None:
    response = await client.get(URL, headers={"Range": "items=0-5"})
    assert response.status_code == 200
    assert response.content == DATA


async def test_range_on_empty_file(client: Client, write_media: Callable[[str, bytes], Path]) -> None:
    write_media("empty.txt", b"")
    response = await client.get("/api/v1/media/empty.txt", headers={"Range": "bytes=0-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */0"
    assert (await client.get("/api/v1/media/empty.txt")).content == b""


async def test_if_none_match(client: Client) -> None:
    etag = (await client.get(URL)).headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = await client.get(URL, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag
    # If-None-Match wins over Range.
    assert (await client.get(URL, headers={"If-None-Match": etag, "Range": "bytes=0-9"})).status_code == 304
    assert (await client.get(URL, headers={"If-None-Match": '"stale"'})).status_code == 200


async def test_etag_changes_with_the_file(client: Client, video: Path) -> None:
    etag = (await client.get(URL)).headers["etag"]
    os.utime(video, ns=(0, 10**9))
    assert (await client.get(URL)).headers["etag"] != etag


async def test_if_range(client: Client) -> None:
    first = await client.get(URL)
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    for validator in (etag, last_modified):
        response = await client.get(URL, headers={"Range": "bytes=0-9", "If-Range": validator})
        assert response.status_code == 206, validator
        assert response.content == DATA[:10]
    # A stale or weak validator means the client's copy may differ: send the whole file.
    for validator in ('"stale"', f"W/{etag}", "Thu, 01 Jan 1970 00:00:00 GMT"):
        response = await client.get(URL, headers={"Range": "bytes=0-9", "If-Range": validator})
        assert response.status_code == 200, validator
        assert response.content == DATA


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("clip.mp4", "video/mp4"),
        ("c1.global.txt", "text/plain; charset=utf-8"),
        ("trajectories.csv", "text/csv; charset=utf-8"),
        ("events.json", "application/json"),
        ("map.png", "image/png"),
        ("frame.jpg", "image/jpeg"),
        ("blob.weird-extension", "application/octet-stream"),
    ],
)
async def test_content_types(
    client: Client, write_media: Callable[[str, bytes], Path], name: str, content_type: str
) -> None:
    write_media(f"tasks/t1/exports/{name}", b"x")
    response = await client.get(f"/api/v1/media/tasks/t1/exports/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


@pytest.mark.parametrize(
    ("head", "content_type"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4"),
        (b"RIFF\x10\x00\x00\x00AVI LIST", "video/x-msvideo"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "video/x-matroska"),
    ],
)
async def test_a_video_named_mp4_is_served_as_the_container_it_is(
    client: Client, write_media: Callable[[str, bytes], Path], head: bytes, content_type: str
) -> None:
    """A sub-video published before the service made videos browser-playable (an AVI named
    .mp4) is not announced as MP4, which a browser would fail to play without a word."""
    write_media("tasks/t2/sub_video_01.mp4", head + b"\x00" * 100)
    response = await client.get("/api/v1/media/tasks/t2/sub_video_01.mp4", headers={"Range": "bytes=0-3"})
    assert response.status_code == 206 and response.content == head[:4]
    assert response.headers["content-type"] == content_type


@pytest.fixture
def secret(media_root: Path) -> Path:
    path = media_root.parent / "secret.txt"
    path.write_bytes(b"top secret")
    return path


@pytest.mark.parametrize(
    "path",
    [
        "%2e%2e/secret.txt",
        "tasks/%2E%2E/%2E%2E/secret.txt",
        "..%2fsecret.txt",
        "%2F..%2Fsecret.txt",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "tasks",  # a directory
        "tasks/t1/nothing.mp4",  # missing
    ],
)
async def test_paths_outside_the_root_are_not_found(client: Client, secret: Path, path: str) -> None:
    response = await client.get("/api/v1/media/" + path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert b"top secret" not in response.content


async def test_a_nul_in_the_path_is_refused(client: Client, expect_problem) -> None:
    expect_problem(await client.get("/api/v1/media/nul%00byte.mp4"), 400)


async def test_symlinks(client: Client, media_root: Path, secret: Path) -> None:
    (media_root / "escape.txt").symlink_to(secret)
    assert (await client.get("/api/v1/media/escape.txt")).status_code == 404
    (media_root / "inside.mp4").symlink_to(media_root / VIDEO)
    assert (await client.get("/api/v1/media/inside.mp4")).content == DATA


def test_resolve_rejects_escapes(media_root: Path, secret: Path) -> None:
    assert media.resolve(media_root, "../secret.txt") is None
    assert media.resolve(media_root, str(secret)) is None
    assert media.resolve(media_root, "a/../../secret.txt") is None
    assert media.resolve(media_root, "/" + VIDEO) == (media_root / VIDEO).resolve()


async def test_chunks_are_bounded(video: Path) -> None:
    opened = await media.MediaFile.open(video)
    sizes = [len(chunk) async for chunk in opened.chunks(5, SIZE - 5)]
    assert max(sizes) == media.CHUNK_BYTES
    assert sum(sizes) == SIZE - 5
