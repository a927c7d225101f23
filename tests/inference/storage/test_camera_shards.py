"""Camera shards between replicas through the real (embedded) Redis: an offer nobody takes runs
at its owner; one another replica takes runs there and its messages reach the owner exactly,
paced by the owner; a claim that lapses fails the task naming the replica; a stopped task
stops its shards, and a shard that fails says why."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from spoton_inference.storage.camera_shards import (
    RedisShardLinks,
    ShardOffer,
    ShardWorker,
    claim_key,
    decode,
    encode,
)
from spoton_inference.storage.redis_client import connect
from spoton_inference.tracking.appearance import ReidCalibration
from spoton_inference.tracking.camera import TrackedBox
from spoton_inference.tracking.multicam import CameraFrame
from spoton_inference.tracking.shard_messages import BatchEnd, CameraView, Mark, Progress, ShardError, ShardFrame

pytestmark = pytest.mark.timeout(60)
TTL_S = 2.0


@dataclasses.dataclass(frozen=True)
class _Camera:
    camera_id: str


def _frame(index: int, rng: np.random.Generator) -> ShardFrame:
    tracks = [
        TrackedBox(1, rng.random(4, dtype=np.float32), float(rng.random()), True, rng.random(512).astype(np.float32)),
        TrackedBox(2, rng.random(4, dtype=np.float32), 0.5, False, rng.random(512), rng.random(512, dtype=np.float32)),
    ]
    view = CameraView(
        "sub_video_01.mp4", index, rng.random((3, 4), dtype=np.float32), rng.random(3, dtype=np.float32),
        CameraFrame(tracks, rng.random((2, 4), dtype=np.float32)),
    )  # fmt: skip
    return ShardFrame(index, {"c3": view})


def test_a_frame_crosses_the_wire_bit_for_bit():
    frame = _frame(4, np.random.default_rng(0))
    back = decode(encode(frame))
    assert isinstance(back, ShardFrame) and back.global_index == 4
    sent, got = frame.cameras["c3"], back.cameras["c3"]
    assert (got.source, got.index_in_source) == (sent.source, sent.index_in_source)
    for a, b in [(sent.boxes, got.boxes), (sent.scores, got.scores), (sent.tracked.confident, got.tracked.confident)]:
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for t, u in zip(sent.tracked.tracks, got.tracked.tracks, strict=True):
        assert (t.track_id, t.score, t.is_new) == (u.track_id, u.score, u.is_new)
        assert np.array_equal(t.box, u.box) and t.feature.dtype == u.feature.dtype
        assert np.array_equal(t.feature, u.feature)
        assert (t.crop is None and u.crop is None) or np.array_equal(t.crop, u.crop)


@pytest_asyncio.fixture
async def clients(redis_server) -> AsyncIterator[list]:
    made = [connect(redis_server.url, 8) for _ in range(2)]
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


def _links(client, task_id: str, claim_wait_s: float = 1.0) -> RedisShardLinks:
    return RedisShardLinks(
        client,
        task_id=task_id,
        replica="owner",
        environment_id="env",
        task_camera_ids=["c1", "c3"],
        detection_threshold=0.6,
        ttl_s=TTL_S,
        claim_wait_s=claim_wait_s,
    )


async def test_an_offer_nobody_takes_runs_at_its_owner(clients, redis_server):
    links = _links(clients[0], "t-alone", claim_wait_s=0.3)
    assert await links.offer(1, (_Camera("c3"),)) is None
    assert await clients[0].get(claim_key("t-alone", 1)) == b"owner"  # so a late worker cannot take it too


async def test_a_shard_another_replica_takes_sends_its_frames_paced_by_the_owner(clients):
    rng = np.random.default_rng(1)
    sent = [_frame(i, rng) for i in range(3)]
    offers: list[ShardOffer] = []
    waited: list[Progress] = []

    async def run_shard(offer, output, pace) -> None:
        offers.append(offer)
        await output.send(sent[0])
        await output.send(Mark(1))
        waited.append(await pace.wait_through(0))  # the owner's calibration comes with it
        for frame in sent[1:]:
            await output.send(frame)
        await output.send(BatchEnd(0))

    worker = ShardWorker(clients[1], "worker", run_shard, ttl_s=TTL_S)
    worker.start()
    try:
        await asyncio.sleep(0.1)  # its first read is of offers made from then on
        links = _links(clients[0], "t-split")
        inbox = await links.offer(1, (_Camera("c3"),))
        assert inbox is not None
        got = [await inbox.receive(), await inbox.receive()]
        await links.advance(Progress(0, 0, ReidCalibration(0.2, 0.45)))
        got += [await inbox.receive() for _ in range(3)]
        assert [type(m).__name__ for m in got] == ["ShardFrame", "Mark", "ShardFrame", "ShardFrame", "BatchEnd"]
        assert [m.global_index for m in got if isinstance(m, ShardFrame)] == [0, 1, 2]
        assert waited == [Progress(0, 0, ReidCalibration(0.2, 0.45))]
        (offer,) = offers
        assert (offer.owner, offer.camera_ids, offer.task_camera_ids, offer.detection_threshold) == (
            "owner", ("c3",), ("c1", "c3"), 0.6
        )  # fmt: skip
        await links.close()
        assert not await clients[0].exists(claim_key("t-split", 1))
    finally:
        await worker.close()


async def test_a_stopped_task_stops_its_shards(clients, redis_server):
    stopped = asyncio.Event()

    async def run_shard(offer, output, pace) -> None:
        try:
            await pace.wait_through(10_000)  # waits for the owner, who never gets there
        finally:
            stopped.set()

    worker = ShardWorker(connect(redis_server.url, 8), "worker", run_shard, ttl_s=TTL_S)
    worker.start()
    await asyncio.sleep(0.1)
    links = _links(clients[0], "t-stop")
    assert await links.offer(1, (_Camera("c3"),)) is not None
    assert worker.running == 1
    await links.close()  # the task ended: its shard hears it
    async with asyncio.timeout(10):
        await stopped.wait()
    await worker.close()


async def test_a_claim_that_lapses_fails_the_owner_s_wait_naming_the_replica(clients):
    """A replica killed mid-shard sends nothing more and stops renewing its claim."""
    links = _links(clients[0], "t-gone")
    offering = asyncio.create_task(links.offer(1, (_Camera("c3"),)))
    await asyncio.sleep(0.1)
    assert await clients[1].set(claim_key("t-gone", 1), "worker-gone", nx=True, ex=1)  # then it dies
    inbox = await offering
    assert inbox is not None
    with pytest.raises(ShardError, match="replica worker-gone, which ran cameras c3, stopped"):
        async with asyncio.timeout(10):
            await inbox.receive()
