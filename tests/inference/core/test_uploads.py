"""Uploads stream to disk under a size limit, and leave no file when they fail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spoton_inference.core.errors import InvalidArgument, ResourceExhausted
from spoton_inference.core.uploads import receive_to_file


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
