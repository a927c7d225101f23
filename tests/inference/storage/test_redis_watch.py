"""Many watchers of one task share one Redis read: each gets every event, in order, and the
service's Redis connections stay well under their bound (redis-py's default pool failed with
"Too many connections" past 100 watchers, and starved event publishing and the lease). The
blocking read holds a connection of its own pool, never one of the command pool."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from support.auth import ADMIN_API_KEY
from support.services import serving

from spoton.v1 import tasks_pb2
from spoton_client.client import SpotOnClient
from spoton_inference.domain.events import BatchProcessingComplete
from spoton_inference.storage.redis_events import RedisEventLog
from spoton_inference.storage.redis_watch import SharedWaits

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WATCHERS = 200


async def test_watchers_of_one_task_share_a_subscription_and_all_get_every_event(live_service, service_settings):
    # A service of its own: the session's shared one carries every earlier test's tasks and watches,
    # and this test is about what one task's watchers cost. (Run on the shared service, it once
    # stalled past its timeout late in a full CI run; cause not found yet: see the issue 18 note.)
    settings = await service_settings("spoton_redis_watch")
    async with serving(settings) as app:
        await _fan_out(app, settings, live_service.make_environment("fan-out"))


async def _fan_out(app, settings, env_dir) -> None:
    env = await app.catalog.register_directory(str(env_dir))
    server = aioredis.Redis.from_url(settings.redis_url)
    async with SpotOnClient(f"{settings.grpc_host}:{settings.grpc_port}", api_key=ADMIN_API_KEY) as client:
        task = await client.start_task(env.environment_id)
        await client.tasks.ControlTask(
            tasks_pb2.ControlTaskRequest(task_id=task.task_id, action=tasks_pb2.TASK_ACTION_PAUSE)
        )
        opened = app.tasks.open_watches
        watchers = [asyncio.create_task(_collect(client, task.task_id)) for _ in range(WATCHERS)]
        async with asyncio.timeout(60):
            while True:  # a plain counter in the service: polled
                if app.tasks.open_watches >= opened + WATCHERS:
                    break
                await asyncio.sleep(0.05)
        clients: list[int] = []  # the server's connected clients, sampled while events flow
        db = int(urlsplit(settings.redis_url).path.lstrip("/"))
        sampling = asyncio.create_task(_sample_clients(server, db, clients))
        await client.tasks.ControlTask(
            tasks_pb2.ControlTaskRequest(task_id=task.task_id, action=tasks_pb2.TASK_ACTION_RESUME)
        )
        try:
            async with asyncio.timeout(120):
                results = await asyncio.gather(*watchers)
        finally:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)
        last = (await client.get_task(task.task_id)).last_sequence
    await server.aclose()
    peak_clients = max(clients)
    assert all([e.sequence for e in events] == list(range(1, last + 1)) for events in results)
    assert all(events[-1].status_update.state == tasks_pb2.TASK_STATE_COMPLETED for events in results)
    print(f"{WATCHERS} watchers, {last} events each; Redis clients at most {peak_clients}")
    # This service's clients (its command and watch pools, its gallery, and this test's own
    # sampling connection): well under one per watcher.
    bound = settings.redis_max_connections + settings.redis_watch_connections + 5
    assert 0 < peak_clients < bound < WATCHERS
    assert app.tasks.shared_waits.readers == 0  # the shared read stops with its last watcher


async def test_blocked_shared_reads_leave_the_command_pool_free(redis_server):
    # Two connections for commands, two for the blocking reads, and more watched tasks than either.
    log = RedisEventLog.from_url(redis_server.url, retention=100, max_connections=2)
    waits = SharedWaits(log, timeout_s=1.0, connections=2)
    tasks = [f"pool-{i}" for i in range(5)]
    try:
        waiting = [asyncio.create_task(waits.wait_past(task, 0)) for task in tasks]
        await asyncio.sleep(0.2)  # the shared reads are blocked in Redis (or waiting their turn)
        assert waits.readers == len(tasks)
        # Commands get a connection at once although every watch connection is taken.
        async with asyncio.timeout(0.5):
            for task in tasks:
                assert await log.append(task, BatchProcessingComplete(1)) == 1
        async with asyncio.timeout(5):
            await asyncio.gather(*waiting)  # and each watcher learns of its task's event
    finally:
        await waits.close()
        await log.close()


async def _collect(client: SpotOnClient, task_id: str) -> list[tasks_pb2.TaskEvent]:
    return [event async for event in client.watch(task_id)]


async def _sample_clients(server: aioredis.Redis, db: int, into: list[int]) -> None:
    """The server's clients on database ``db``: this service's alone (the suite's other
    services share the server, each on a database of its own)."""
    while True:
        into.append(sum(1 for c in await server.client_list() if int(c["db"]) == db))
        await asyncio.sleep(0.05)
