"""Consuming what a producer task queues, without hanging when the producer dies."""

from __future__ import annotations

import asyncio
from typing import TypeVar

T = TypeVar("T")


async def next_or_failure(queue: asyncio.Queue[T | None], producer: asyncio.Task[None]) -> T | None:
    """The next item ``producer`` queued; ``None`` at its end. A producer that died (an
    outage, a decode error) re-raises its error here instead of leaving the consumer waiting
    for an end marker that never comes."""
    if not queue.empty() or producer.done():
        if queue.empty():
            producer.result()  # raises its error; a producer that ended cleanly queued its marker
            return None
        return queue.get_nowait()
    getting = asyncio.ensure_future(queue.get())
    try:
        await asyncio.wait({getting, producer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not getting.done():
            getting.cancel()
    if getting.done() and not getting.cancelled():
        return getting.result()
    return await next_or_failure(queue, producer)
