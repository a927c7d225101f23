"""Uploads stream to disk under a size limit, at most so many at once, only while they fit on
the disk, and leave no file when they fail. The disk is the real one: a reserve larger than
its free space stands for a full disk."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spoton_inference.domain.errors import InsufficientStorage, InvalidArgument, ResourceExhausted, TooManyUploads
from spoton_inference.services.uploads import SPACE_CHECK_INTERVAL_BYTES, UploadGate, receive_to_file

MIB = 1024 * 1024


async def _chunks(*parts: bytes, stalled: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if stalled is not None:  # the client stops sending but stays connected
        stalled.set()
        await asyncio.Event().wait()


async def test_chunks_are_written_in_order(tmp_path: Path) -> None:
    path = tmp_path / "up" / "a.part"
    assert await receive_to_file(_chunks(b"ab", b"cd", b"e"), path, limit_bytes=5) == 5
    assert path.read_bytes() == b"abcde"


@pytest.mark.parametrize(
    ("parts", "error"), [((b"abc", b"def"), ResourceExhausted), ((), InvalidArgument)], ids=["too-big", "empty"]
)
async def test_a_refused_upload_leaves_no_file(tmp_path: Path, parts, error) -> None:
    path = tmp_path / "a.part"
    with pytest.raises(error):
        await receive_to_file(_chunks(*parts), path, limit_bytes=5)
    assert not path.exists()


async def test_a_cancelled_upload_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "a.part"
    stalled = asyncio.Event()
    receiving = asyncio.create_task(receive_to_file(_chunks(b"abc", stalled=stalled), path, limit_bytes=100))
    await asyncio.wait_for(stalled.wait(), 10)
    assert path.exists()
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving
    assert not path.exists()


def test_uploads_past_the_cap_are_refused_until_one_ends(tmp_path: Path) -> None:
    gate = UploadGate(tmp_path, max_concurrent=2, reserve_bytes=0)
    with gate.admit(0), gate.admit(0) as second:
        with pytest.raises(TooManyUploads, match="SPOTON_MAX_CONCURRENT_UPLOADS") as refused:
            with gate.admit(0):
                pass
        assert refused.value.reason == "too-many-uploads"
        assert second.written_bytes == 0
    with gate.admit(0):  # a slot is free again
        pass


def test_an_upload_that_would_not_fit_is_refused_before_it_starts(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(InsufficientStorage, match="SPOTON_UPLOAD_DISK_RESERVE_BYTES") as full:
        with UploadGate(tmp_path, max_concurrent=2, reserve_bytes=10 * free).admit(0):
            pass
    assert full.value.reason == "insufficient-storage"
    # Announced sizes count: a size over the free space is refused, and one upload's announced
    # but unwritten bytes are kept for it, so a second that fits only alone is refused too.
    gate = UploadGate(tmp_path, max_concurrent=2, reserve_bytes=0)
    with pytest.raises(InsufficientStorage):
        with gate.admit(2 * free):
            pass
    with gate.admit(free // 2 + 100 * MIB), pytest.raises(InsufficientStorage):
        with gate.admit(free // 2 + 100 * MIB):
            pass


async def test_an_upload_of_unknown_size_stops_at_the_reserve_and_leaves_no_file(tmp_path: Path) -> None:
    # Room for a few MiB over the reserve (other writers on this disk only make it less).
    reserve = shutil.disk_usage(tmp_path).free - 4 * MIB
    gate = UploadGate(tmp_path, max_concurrent=2, reserve_bytes=reserve)
    path = tmp_path / "a.part"
    block = b"\0" * MIB
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        while sent < 2 * SPACE_CHECK_INTERVAL_BYTES:
            sent += len(block)
            yield block

    with pytest.raises(InsufficientStorage), gate.admit(0) as slot:
        await receive_to_file(chunks(), path, limit_bytes=10**12, slot=slot)
    assert sent <= SPACE_CHECK_INTERVAL_BYTES + MIB
    assert not path.exists()


async def test_a_file_longer_than_announced_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.part"
    with pytest.raises(InvalidArgument, match="size_bytes"), UploadGate(tmp_path, 2, 0).admit(4) as slot:
        await receive_to_file(_chunks(b"abc", b"de"), path, limit_bytes=100, slot=slot)
    assert not path.exists()
