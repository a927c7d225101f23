"""The outbox on a real Redis that is stopped and started again: nothing written while it is
down is lost or reordered, sequence numbers stay gap-free, and an overflow is announced."""

from __future__ import annotations

import asyncio

import pytest

from spoton_inference.domain.events import (
    BatchProcessingComplete,
    StatusUpdate,
    TaskState,
    TrackingUpdate,
)
from spoton_inference.embedded.redis import EmbeddedRedis
from spoton_inference.settings import Settings
from spoton_inference.storage.event_outbox import LOST_PREFIX, EventOutbox
from spoton_inference.storage.redis_events import RedisEventLog


@pytest.fixture
async def redis(make_data_dir):
    server = EmbeddedRedis(Settings(data_dir=make_data_dir("outbox-redis")))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def log(redis):
    events = RedisEventLog.from_url(redis.url, retention=1000)
    yield events
    await events.close()


def _frame(i: int) -> TrackingUpdate:
    return TrackingUpdate(global_frame_index=i, environment_id="e", timestamp_processed_utc=float(i), cameras=[])


async def _drained(outbox: EventOutbox) -> None:
    async with asyncio.timeout(10):
        while True:  # the outbox's own state, polled: it has no event to wait on
            if not outbox.holding:
                return
            await asyncio.sleep(0.02)


async def test_what_is_written_while_redis_is_down_is_published_in_order_once_it_is_back(redis, log):
    outbox = EventOutbox(log, max_events=100)
    await outbox.append("t", StatusUpdate(TaskState.PROCESSING, 0.1, "processing batch 1"))
    await redis.stop()
    for i in range(5):
        await outbox.append("t", _frame(i))  # returns at once: tracking goes on
        await outbox.set_live_state("t", {"progress": i / 10, "step": "processing"})
    await outbox.set_live_state("t", {"focus_global_id": 7})
    await outbox.append("t", StatusUpdate(TaskState.COMPLETED, 1.0, "completed"))
    assert outbox.holding and outbox.depth == 6 and outbox.lost == 0

    await redis.start()
    await _drained(outbox)
    events = await log.read("t", after=0, block_ms=0)
    assert [e.sequence for e in events] == list(range(1, 8))
    assert [e.payload for e in events[1:6]] == [_frame(i) for i in range(5)]
    assert events[-1].payload.state is TaskState.COMPLETED
    assert [e.emitted_at for e in events] == sorted(e.emitted_at for e in events)
    assert await log.get_live_state("t") == {"progress": "0.4", "step": "processing", "focus_global_id": "7"}
    await outbox.append("t", BatchProcessingComplete(9))  # straight to Redis again
    assert not outbox.holding and await log.last_sequence("t") == 8


async def test_an_overflow_loses_superseded_updates_first_and_says_so_in_a_status_event(redis, log):
    outbox = EventOutbox(log, max_events=4)
    await redis.stop()
    await outbox.append("t", StatusUpdate(TaskState.PROCESSING, 0.2, "processing batch 1"))
    for i in range(6):
        await outbox.append("t", _frame(i))
    await outbox.append("t", BatchProcessingComplete(0))
    await outbox.append("t", StatusUpdate(TaskState.COMPLETED, 1.0, "completed"))
    assert outbox.depth == 4 and outbox.lost == 5

    await redis.start()
    await _drained(outbox)
    events = await log.read("t", after=0, block_ms=0)
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5]
    notice = events[0].payload
    assert notice.state is TaskState.PROCESSING and notice.progress == pytest.approx(0.2)
    assert notice.step.startswith(f"{LOST_PREFIX} 5 live events")
    assert [e.payload for e in events[1:]] == [
        _frame(4),
        _frame(5),
        BatchProcessingComplete(0),
        StatusUpdate(TaskState.COMPLETED, 1.0, "completed"),
    ]


async def test_closing_with_redis_down_gives_up_after_its_bound(redis, log):
    outbox = EventOutbox(log, max_events=10)
    await redis.stop()
    await outbox.append("t", _frame(0))
    await outbox.close(timeout_s=0.3)
    assert outbox.depth == 1
    await redis.start()
