"""The live stream's back-pressure buffer: bounded, drops the oldest, counts what it dropped."""

from __future__ import annotations

import asyncio

import pytest

from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.pipeline.live import FrameBuffer


async def test_a_full_buffer_drops_the_oldest_and_reports_drops_on_the_next_get():
    buf: FrameBuffer[int] = FrameBuffer(2)
    assert [buf.put(i) for i in range(5)] == [None, None, 0, 1, 2]
    assert len(buf) == 2 and buf.high_water == 2 and buf.dropped_total == 3
    assert await buf.get() == (3, 3)
    assert await buf.get() == (4, 0)
    buf.put(5)
    assert await buf.get() == (5, 0)


async def test_memory_stays_bounded_however_fast_the_producer_is():
    buf: FrameBuffer[bytes] = FrameBuffer(3)
    for _ in range(10_000):
        buf.put(b"x" * 1024)
    assert len(buf) == 3 and buf.high_water == 3 and buf.dropped_total == 10_000 - 3


async def test_close_drains_first_then_ends_or_raises():
    buf: FrameBuffer[int] = FrameBuffer(4)
    buf.put(1)
    buf.close()
    assert await buf.get() == (1, 0)
    assert await buf.get() is None

    failing: FrameBuffer[int] = FrameBuffer(4)
    failing.put(1)
    failing.close(InvalidArgument("bad frame"))
    failing.close()  # the first close wins
    assert await failing.get() == (1, 0)
    with pytest.raises(InvalidArgument, match="bad frame"):
        await failing.get()
    with pytest.raises(RuntimeError):
        failing.put(2)


async def test_get_waits_for_a_put_or_a_close():
    buf: FrameBuffer[int] = FrameBuffer(1)
    waiter = asyncio.create_task(buf.get())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    buf.put(7)
    assert await waiter == (7, 0)
    waiter = asyncio.create_task(buf.get())
    await asyncio.sleep(0.01)
    buf.close()
    assert await waiter is None


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        FrameBuffer(0)
