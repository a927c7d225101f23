"""Merging camera shards' frames back into global frames: in frame order, cameras in camera
order, never waiting for a frame a shard has said it does not have, telling shards how far it
has come before it waits for them, and failing with a shard's own reason."""

from __future__ import annotations

import asyncio

import pytest

from spoton_inference.pipeline.frame_merge import FrameMerge
from spoton_inference.tracking.shard_messages import BatchEnd, Mark, ShardError, ShardFailed, ShardFrame

pytestmark = pytest.mark.timeout(10)


class _Queued:
    """A shard's messages as they arrive."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    async def receive(self):
        return await self.queue.get()


def _frame(index: int, camera: str) -> ShardFrame:
    return ShardFrame(index, {camera: f"{camera}@{index}"})  # type: ignore[dict-item]


async def test_frames_come_in_order_with_cameras_in_camera_order_and_gaps_skipped():
    a, b = _Queued(), _Queued()
    told: list[int] = []

    async def advance(through: int) -> None:
        told.append(through)

    merge = FrameMerge([a, b], ["c1", "c2"], advance)
    merge.begin_batch(10)
    for message in (_frame(10, "c2"), _frame(11, "c2"), _frame(14, "c2"), BatchEnd(0)):
        b.queue.put_nowait(message)
    for message in (_frame(11, "c1"), _frame(12, "c1"), BatchEnd(0)):
        a.queue.put_nowait(message)
    frames = [(f.global_index, list(f.cameras)) async for f in merge]
    assert frames == [(10, ["c2"]), (11, ["c1", "c2"]), (12, ["c1"]), (14, ["c2"])]


async def test_a_mark_lets_the_merge_go_on_and_the_merge_tells_how_far_it_came_before_waiting():
    """Shard b is about to wait until frame 5 is processed (it has nothing before 7): the merge
    processes a's frames up to 6 without waiting for b, and says so before it waits for more."""
    a, b = _Queued(), _Queued()
    told: list[int] = []

    async def advance(through: int) -> None:
        told.append(through)
        if through >= 6:  # what b was waiting for
            b.queue.put_nowait(_frame(7, "c2"))
            b.queue.put_nowait(BatchEnd(0))

    merge = FrameMerge([a, b], ["c1", "c2"], advance)
    merge.begin_batch(0)
    b.queue.put_nowait(Mark(7))
    for i in range(7):
        a.queue.put_nowait(_frame(i, "c1"))
    got = [(await merge.next()).global_index for _ in range(7)]  # type: ignore[union-attr]
    assert got == list(range(7))
    a.queue.put_nowait(BatchEnd(0))
    nxt = await merge.next()
    assert nxt is not None and nxt.global_index == 7 and told[-1] == 6
    assert await merge.next() is None


async def test_a_shard_that_failed_fails_the_merge_with_its_reason():
    a = _Queued()

    async def advance(through: int) -> None:
        pass

    merge = FrameMerge([a], ["c1"], advance)
    merge.begin_batch(0)
    a.queue.put_nowait(ShardFailed("cameras c3 failed on replica r2: decoding sub_video_01.mp4 failed"))
    with pytest.raises(ShardError, match=r"decoding sub_video_01\.mp4 failed"):
        await merge.next()
