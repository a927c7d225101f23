"""Controls passed between replicas through the real (embedded) Redis: the owner applies them and
its answer, refusal included, reaches the replica that forwarded them; a replica that does not
answer is Unavailable within the bound, naming it; a control past its deadline is not applied."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from spoton_inference.domain.errors import FailedPrecondition, Unavailable
from spoton_inference.services.task_ports import ControlRequest
from spoton_inference.storage.control_relay import RedisControlRelay, controls_key
from spoton_inference.storage.redis_client import connect

pytestmark = pytest.mark.timeout(60)


@pytest_asyncio.fixture
async def relays(redis_server) -> AsyncIterator[tuple[RedisControlRelay, RedisControlRelay]]:
    a = RedisControlRelay(connect(redis_server.url, 4), "replica-a", timeout_s=2.0)
    b = RedisControlRelay(connect(redis_server.url, 4), "replica-b", timeout_s=2.0)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_the_owner_applies_a_forwarded_control_and_its_refusal_comes_back(relays):
    a, b = relays
    applied: list[ControlRequest] = []

    async def handle(request: ControlRequest) -> None:
        if request.action == "resume":
            raise FailedPrecondition(f"task {request.task_id} is processing, not paused")
        applied.append(request)

    b.start(handle)
    await a.forward("replica-b", ControlRequest("t1", "pause"))
    assert applied == [ControlRequest("t1", "pause")] and b.applied == 1
    with pytest.raises(FailedPrecondition, match="task t1 is processing, not paused"):
        await a.forward("replica-b", ControlRequest("t1", "resume"))


async def test_a_replica_that_does_not_answer_is_unavailable_within_the_bound(relays):
    a, _ = relays  # nobody listens as replica-c
    started = time.monotonic()
    with pytest.raises(Unavailable, match="replica-c, which did not answer the cancel within 2 s"):
        await a.forward("replica-c", ControlRequest("t2", "cancel"))
    assert time.monotonic() - started < 5.0


async def test_a_control_past_its_deadline_is_dropped_not_applied(relays, redis_server):
    a, b = relays
    stale = {"id": "x", "task_id": "t3", "action": "cancel", "deadline": time.time() - 1, "from": "replica-a"}
    client = connect(redis_server.url, 2)
    try:
        await client.rpush(controls_key("replica-b"), json.dumps(stale))
    finally:
        await client.aclose()
    applied: list[ControlRequest] = []

    async def handle(request: ControlRequest) -> None:
        applied.append(request)

    b.start(handle)
    await a.forward("replica-b", ControlRequest("t4", "pause"))  # queued behind the stale one
    await asyncio.sleep(0)
    assert applied == [ControlRequest("t4", "pause")]
