"""A replica's lease in the real (embedded) Redis: renewed, it stays alive for the others; left
unrenewed past its time to live (Redis unreachable from this replica), it is lost, and the
replica is told once; renewed again, it is back, and a second loss is told again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from spoton_inference.embedded.ports import LOOPBACK, pick_free_ports
from spoton_inference.storage.redis_client import connect
from spoton_inference.storage.replicas import ReplicaLease

pytestmark = pytest.mark.timeout(60)
# Short, so a loss comes within a second or two: renewed every 0.1 s.
TTL_S = 1.2
# How long a loss may come after its time to live: one retry and one bounded renewal attempt,
# with room for a loaded machine.
LATE_S = 1.5


@pytest_asyncio.fixture
async def clients(redis_server) -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    """A client on the embedded Redis, and one on a loopback port where nothing listens (this
    replica cut off from Redis: every command is refused)."""
    (port,) = pick_free_ports(1)
    live, cut = connect(redis_server.url, 4), connect(f"redis://{LOOPBACK}:{port}/0", 4)
    try:
        yield live, cut
    finally:
        await live.aclose()
        await cut.aclose()


async def _until_alive(observer: ReplicaLease, replica: str) -> None:
    async with asyncio.timeout(10):
        while True:  # what another replica's sweep asks, polled
            if await observer.alive(replica):
                return
            await asyncio.sleep(0.05)


async def test_a_lease_left_unrenewed_past_its_ttl_is_lost_once_and_comes_back(clients):
    live, cut = clients
    lease = ReplicaLease(live, "replica-fenced", TTL_S)
    observer = ReplicaLease(live, "replica-observer", TTL_S)
    losses: list[float] = []
    lost = asyncio.Event()

    def on_lost() -> None:
        losses.append(time.monotonic())
        lost.set()

    lease.on_lost(on_lost)
    await lease.start()
    try:
        # Renewed well within its time to live: alive for others long past it, never lost.
        await asyncio.sleep(TTL_S * 2)  # several TTLs must pass for a lapse to be possible at all
        assert await observer.alive("replica-fenced") and not lease.lost and not losses

        lease.client = cut
        cut_at = time.monotonic()
        async with asyncio.timeout(TTL_S + LATE_S):
            await lost.wait()
        # Not before the TTL ran out since the last renewal (sent at most one interval before the cut).
        assert losses[0] - cut_at >= TTL_S - lease.renew_every_s - 0.05
        assert lease.lost and not await observer.alive("replica-fenced")
        await asyncio.sleep(TTL_S)  # still cut off, retrying all along: the loss is told only once
        assert len(losses) == 1

        lease.client = live
        await _until_alive(observer, "replica-fenced")
        assert not lease.lost
        lost.clear()
        lease.client = cut
        async with asyncio.timeout(TTL_S + LATE_S):
            await lost.wait()
        assert len(losses) == 2
    finally:
        lease.client = live
        await lease.close()
    assert not await observer.alive("replica-fenced")  # a clean stop gives the lease up


async def test_a_failing_callback_does_not_keep_the_others_from_being_told(clients):
    live, cut = clients
    lease = ReplicaLease(live, "replica-callbacks", TTL_S)
    told = asyncio.Event()

    def broken() -> None:
        raise RuntimeError("boom")

    lease.on_lost(broken)
    lease.on_lost(told.set)
    await lease.start()
    try:
        lease.client = cut
        async with asyncio.timeout(TTL_S + LATE_S):
            await told.wait()
    finally:
        lease.client = live
        await lease.close()
