"""Task control helpers that need no service around them."""

from __future__ import annotations

import asyncio

from spoton_inference.services.task_control import raise_if_cancel_was_swallowed


async def _swallowing_step() -> None:
    # What asyncio.wait_for does on Python 3.11 (and so redis-py's every command write) when
    # the cancellation lands as the awaited write completes: the CancelledError is dropped.
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        pass


async def test_a_swallowed_cancellation_is_raised_again_at_the_next_step() -> None:
    steps = 0

    async def loop() -> None:
        nonlocal steps
        while True:
            raise_if_cancel_was_swallowed()
            steps += 1
            await _swallowing_step()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait({task}, timeout=2)
    assert task.cancelled() and steps == 1


async def test_an_uncancelled_task_goes_on() -> None:
    async def guarded() -> None:
        async with asyncio.timeout(0.01):  # a timeout cancels, then uncancels: not a pending request
            await asyncio.sleep(1)

    async def outer() -> str:
        try:
            await guarded()
        except TimeoutError:
            pass
        raise_if_cancel_was_swallowed()
        return "went on"

    assert await asyncio.create_task(outer()) == "went on"
