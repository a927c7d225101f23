import asyncio
import uuid

import pytest

from spoton_inference.domain.events import BatchProcessingComplete, StatusUpdate, TaskState
from spoton_inference.storage.redis_events import EventsExpired, RedisEventLog


@pytest.fixture
async def log(redis_server):
    events = RedisEventLog.from_url(redis_server.url, retention=5)
    yield events
    await events.close()


async def test_sequences_are_gap_free_and_reads_resume(log):
    task = "t-resume"
    for i in range(3):
        assert await log.append(task, BatchProcessingComplete(i)) == i + 1
    events = await log.read(task, after=0, block_ms=0)
    assert [e.sequence for e in events] == [1, 2, 3]
    assert [e.payload for e in events][2] == BatchProcessingComplete(2)
    assert [e.sequence for e in await log.read(task, after=2, block_ms=0)] == [3]
    assert await log.last_sequence(task) == 3


async def test_a_waiting_reader_gets_new_events(log):
    task = "t-follow"

    async def produce():
        await asyncio.sleep(0.2)
        await log.append(task, StatusUpdate(TaskState.COMPLETED, 1.0, "done"))

    producer = asyncio.create_task(produce())
    events = await log.read(task, after=0, block_ms=3000)
    await producer
    assert events[0].payload.state is TaskState.COMPLETED


async def test_resuming_before_the_retention_window_is_refused_not_skipped(log):
    task = "t-expired"
    for i in range(8):  # retention is 5
        await log.append(task, BatchProcessingComplete(i))
    with pytest.raises(EventsExpired, match="retention"):
        await log.read(task, after=1, block_ms=0)
    assert [e.sequence for e in await log.read(task, after=3, block_ms=0)] == [4, 5, 6, 7, 8]


async def test_sequence_numbers_survive_a_redis_restart(redis_server, log):
    task = "t-restart"
    await log.append(task, BatchProcessingComplete(0))
    await redis_server.stop()
    await redis_server.start()
    fresh = RedisEventLog.from_url(redis_server.url, retention=5)
    try:
        assert await fresh.append(task, BatchProcessingComplete(1)) == 2
    finally:
        await fresh.close()


async def test_a_retried_append_with_the_same_token_is_published_once(log):
    task = "t-retry"
    assert await log.append(task, BatchProcessingComplete(0), token="a") == 1
    assert await log.append(task, BatchProcessingComplete(0), token="a") == 1  # the reply was lost: retried
    assert await log.append(task, BatchProcessingComplete(1), token="b") == 2
    assert [e.sequence for e in await log.read(task, after=0, block_ms=0)] == [1, 2]


async def test_the_log_goes_on_at_once_after_redis_restarts(log, redis_server):
    # The server closes every pooled connection on its way down; the next command must not fail
    # once Redis is back (a watcher's first call after a restart answered UNAVAILABLE).
    task = f"t-restart-{uuid.uuid4()}"
    assert await log.append(task, BatchProcessingComplete(0)) == 1
    await redis_server.stop()
    await redis_server.start()
    assert await log.last_sequence(task) == 1  # the server keeps its log across a clean restart
    assert await log.append(task, BatchProcessingComplete(1)) == 2
    assert [e.sequence for e in await log.read(task, after=0, block_ms=0)] == [1, 2]
