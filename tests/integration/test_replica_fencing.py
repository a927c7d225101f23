"""Self-fencing: a replica that could not renew its lease for longer than its time to live cannot
know whether another replica failed its tasks over, so it stops them itself.

The replica here is a second in-process service on live_service's PostgreSQL, Redis and Triton,
with a 2 s lease. Only its lease is cut off from Redis (its client swapped for one whose every
command is refused), so its events still reach the stream, where live_service (replica A) serves
them. Its lease key is kept alive on its behalf meanwhile, as it is in the moments before the
other replicas' sweep comes round: what stops the task is this replica, not a fail-over.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from support.services import serving

from spoton_inference.app import InferenceApp
from spoton_inference.domain.errors import FailedPrecondition
from spoton_inference.domain.events import StatusUpdate, TaskEvent, TaskState
from spoton_inference.embedded.ports import LOOPBACK, pick_free_ports
from spoton_inference.services.tasks import TaskAction
from spoton_inference.storage.redis_client import connect
from spoton_inference.storage.task_store import TaskStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
REPLICA = "replica-fenced"
TTL_S = 2.0
# A loss comes within the TTL plus one retry and one bounded renewal; the rest is room for a busy machine.
STOPPED_WITHIN_S = TTL_S + 10.0


@pytest_asyncio.fixture(scope="module")
async def fenced(live_service, make_data_dir) -> AsyncIterator[InferenceApp]:
    (port,) = pick_free_ports(1)
    settings = dataclasses.replace(
        live_service.settings,
        data_dir=make_data_dir(REPLICA),  # a journal of its own; media (exports) shared, as replicas share it
        grpc_port=port,
        replica_id=REPLICA,
        replica_lease_ttl_s=TTL_S,
    )
    async with serving(settings) as app:
        yield app


@contextlib.asynccontextmanager
async def _lease_cut_off(app: InferenceApp, keeper: aioredis.Redis) -> AsyncIterator[asyncio.Event]:
    """The replica's lease client refuses every command for the block; its key is kept alive on
    its behalf meanwhile. Yields an event set once the replica has lost its lease."""
    (port,) = pick_free_ports(1)  # nothing listens there
    cut, live = connect(f"redis://{LOOPBACK}:{port}/0", 2), app.lease.client
    lost = asyncio.Event()
    app.lease.on_lost(lost.set)
    key = f"spoton:replica:{REPLICA}"

    async def keep_key() -> None:
        while True:
            await keeper.set(key, "1", px=int(TTL_S * 1000))
            await asyncio.sleep(TTL_S / 4)

    keeping = asyncio.create_task(keep_key())
    app.lease.client = cut
    try:
        yield lost
    finally:
        app.lease.client = live
        keeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeping
        await cut.aclose()
    async with asyncio.timeout(10):  # renewed again, so later tests find it alive
        while True:  # the lease's own state, polled: it has no event to wait on
            if not app.lease.lost:
                return
            await asyncio.sleep(0.05)


async def _events(app: InferenceApp, task_id: str) -> list[TaskEvent]:
    """The task's whole stream, as another replica serves it, up to its final status."""
    async with asyncio.timeout(STOPPED_WITHIN_S):
        return [event async for event in app.tasks.watch(task_id, 0)]


async def _failed(app: InferenceApp, task_id: str) -> list[StatusUpdate]:
    """Every FAILED status in the task's stream, read whole (a watch ends at the first)."""
    events = await app.events.read(task_id, after=0, block_ms=0, count=10_000)
    return [e.payload for e in events if isinstance(e.payload, StatusUpdate) and e.payload.state is TaskState.FAILED]


async def test_a_replica_that_lost_its_lease_stops_its_running_task_with_a_reason(live_service, fenced):
    env_id = (await fenced.catalog.register_directory(str(live_service.make_environment("fenced")))).environment_id
    record = await fenced.tasks.start(env_id, [], allow_concurrent=True)
    # Paused at once, so it is still running (between frames) when the lease is lost.
    await fenced.tasks.control(record.task_id, TaskAction.PAUSE)

    async with _lease_cut_off(fenced, live_service.app.events.client) as lost:
        events = await _events(live_service.app, record.task_id)
        assert lost.is_set() and fenced.lease.lost

    last = events[-1].payload
    assert isinstance(last, StatusUpdate) and last.state is TaskState.FAILED
    assert f"replica {REPLICA}" in last.error and "lease" in last.error, last.error
    assert await _failed(live_service.app, record.task_id) == [last]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    stored = await live_service.app.tasks.get(record.task_id)
    assert stored.state is TaskState.FAILED and stored.error == last.error
    assert stored.frames_processed < stored.total_frames
    # Stopped, not just marked: nothing of it runs on to be resumed.
    with pytest.raises(FailedPrecondition, match="only an unfinished task can be controlled"):
        await fenced.tasks.control(record.task_id, TaskAction.RESUME)


async def test_a_task_another_replica_failed_over_first_gets_no_second_end(live_service, fenced, caplog):
    """Another replica saw the lease lapse and failed the task over first: the fenced replica
    stops its runner, and its own write and event are skipped (one FAILED, the other's)."""
    env_id = (await fenced.catalog.register_directory(str(live_service.make_environment("fenced-late")))).environment_id
    record = await fenced.tasks.start(env_id, [], allow_concurrent=True)
    await fenced.tasks.control(record.task_id, TaskAction.PAUSE)
    reason = "replica replica-fenced, which ran it, stopped (its lease lapsed); start the task again"
    # What replica A's sweep does to a task of a replica whose lease lapsed.
    assert await TaskStore(live_service.app.db).fail_unfinished_tasks(reason, [record.task_id]) == [record.task_id]
    await live_service.app.outbox.append(record.task_id, StatusUpdate(TaskState.FAILED, 0.0, "interrupted", reason))

    caplog.set_level(logging.INFO, logger="spoton_inference.services.task_control")
    async with _lease_cut_off(fenced, live_service.app.events.client) as lost:
        async with asyncio.timeout(STOPPED_WITHIN_S):
            await lost.wait()
            while True:  # the runner's end is seen only in its log line, polled
                if any("failed over by another replica" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.05)

    assert await _failed(live_service.app, record.task_id) == [
        StatusUpdate(TaskState.FAILED, 0.0, "interrupted", reason)
    ]
    assert (await live_service.app.tasks.get(record.task_id)).error == reason
