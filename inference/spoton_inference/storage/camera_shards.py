"""A task's camera shards on other replicas, through the shared Redis.

The replica that runs a task (its owner) keeps the association; past
``SPOTON_MAX_CAMERAS_PER_REPLICA`` cameras it offers the other shards on one stream that every
replica reads (``spoton:shard-offers``). A replica with room claims a shard with ``SET NX`` on
the shard's claim key; if nobody has within :data:`CLAIM_WAIT_S`, the owner claims it itself and
runs it in its own process. The claim is renewed like a replica lease; a claim that lapses
(the replica running it is gone) fails the task, naming that replica.

Per claimed shard, two streams:

- ``...:frames``, shard to owner: its messages (:mod:`spoton_inference.tracking.shard_messages`)
  encoded with msgpack, numpy arrays as raw bytes with their dtype and shape, so the owner's
  association sees exactly what the shard's trackers gave (and the global ids are those of one
  replica). Bounded by the shard's pace (it runs at most ``MAX_LEAD_FRAMES`` ahead).
- ``...:pace``, owner to shards: how far the association has come, its calibration, and at
  the end a stop. Trimmed to its last few entries: only the latest counts.

Everything expires: a stream or claim nobody renews is dropped by Redis within
``2 x ttl_s``.

    >>> offers_key(), claim_key("t1", 2), frames_key("t1", 2), pace_key("t1")
    ('spoton:shard-offers', 'spoton:task:t1:shard:2:claim', 'spoton:task:t1:shard:2:frames', 'spoton:task:t1:pace')
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable, Sequence

import msgspec
import numpy as np
import redis.asyncio as aioredis

from spoton_inference.domain.environment import Camera
from spoton_inference.storage.redis_client import UNREACHABLE
from spoton_inference.tracking.appearance import ReidCalibration
from spoton_inference.tracking.camera import TrackedBox
from spoton_inference.tracking.multicam import CameraFrame
from spoton_inference.tracking.shard_messages import (
    BatchEnd,
    CameraView,
    Mark,
    Progress,
    ShardError,
    ShardFailed,
    ShardFrame,
    ShardMessage,
)

log = logging.getLogger(__name__)

# How long an owner waits for another replica to claim a shard before running it itself.
CLAIM_WAIT_S = 5.0
CLAIM_POLL_S = 0.05
# Shards of other replicas' tasks one replica runs at once; it claims no more beyond that.
MAX_SHARDS = 4
OFFERS_KEPT = 1000
PACE_KEPT = 8
# A blocking read waits this long, then checks that the other side is still there.
READ_WAIT_S = 2.0
# Connections of the shards' own pool: blocking reads hold theirs for the whole wait.
CONNECTIONS = 16
# After Redis could not be reached, the offer reader tries again this often.
RETRY_S = 1.0
# A frozen Redis never answers a blocking read: each is bounded by its own wait plus this.
FROZEN_MARGIN_S = 5.0


def offers_key() -> str:
    return "spoton:shard-offers"


def claim_key(task_id: str, shard: int) -> str:
    return f"spoton:task:{task_id}:shard:{shard}:claim"


def frames_key(task_id: str, shard: int) -> str:
    return f"spoton:task:{task_id}:shard:{shard}:frames"


def pace_key(task_id: str) -> str:
    return f"spoton:task:{task_id}:pace"


def _seconds(ttl_s: float) -> int:
    """A key's time to live as Redis takes it: whole seconds, at least one."""
    return max(1, math.ceil(ttl_s))


@dataclasses.dataclass(frozen=True, slots=True)
class ShardOffer:
    """A shard a task's owner asks another replica to run."""

    task_id: str
    shard: int
    owner: str  # the owner replica's id
    environment_id: str
    task_camera_ids: tuple[str, ...]  # all the task's cameras (their batches pace the shard)
    camera_ids: tuple[str, ...]  # this shard's
    detection_threshold: float | None


# --- wire format ----------------------------------------------------------------------------


class _Array(msgspec.Struct, array_like=True):
    dtype: str
    shape: tuple[int, ...]
    data: bytes


class _Track(msgspec.Struct, array_like=True):
    track_id: int
    box: _Array
    score: float
    is_new: bool
    feature: _Array | None
    crop: _Array | None


class _View(msgspec.Struct, array_like=True):
    camera_id: str
    source: str
    index_in_source: int
    boxes: _Array
    scores: _Array
    confident: _Array
    tracks: list[_Track]


class _Message(msgspec.Struct, array_like=True):
    kind: str  # frame, mark, end, failed
    index: int = 0  # frame: its global index; mark: the next; end: the batch
    views: list[_View] = []
    reason: str = ""


class _Pace(msgspec.Struct):
    through: int
    last_frame: int = -1
    same: float | None = None
    different: float | None = None
    stop: bool = False


def _pack(a: np.ndarray) -> _Array:
    a = np.ascontiguousarray(a)
    return _Array(a.dtype.str, a.shape, a.tobytes())


def _unpack(a: _Array) -> np.ndarray:
    return np.frombuffer(a.data, dtype=np.dtype(a.dtype)).reshape(a.shape).copy()


def _maybe(a: np.ndarray | None) -> _Array | None:
    return None if a is None else _pack(a)


def encode(message: ShardMessage) -> bytes:
    """A shard's message as bytes, exactly (arrays keep dtype and every bit).

    >>> t = TrackedBox(3, np.array([1, 2, 3, 4], np.float32), 0.875, True, np.ones(4, np.float32))
    >>> frame = ShardFrame(7, {"c2": CameraView("a.mp4", 7, np.zeros((1, 4), np.float32), np.ones(1, np.float32),
    ...                                          CameraFrame([t], np.zeros((1, 4), np.float32)))})
    >>> back = decode(encode(frame))
    >>> back.global_index, back.cameras["c2"].tracked.tracks[0].score, back.cameras["c2"].tracked.tracks[0].crop
    (7, 0.875, None)
    >>> decode(encode(Mark(12))), decode(encode(ShardFailed("no"))).reason
    (Mark(next_index=12), 'no')
    """
    match message:
        case ShardFrame():
            views = [
                _View(
                    cam,
                    v.source,
                    v.index_in_source,
                    _pack(v.boxes),
                    _pack(v.scores),
                    _pack(v.tracked.confident),
                    [
                        _Track(t.track_id, _pack(t.box), t.score, t.is_new, _maybe(t.feature), _maybe(t.crop))
                        for t in v.tracked.tracks
                    ],
                )
                for cam, v in message.cameras.items()
            ]
            wire = _Message("frame", message.global_index, views)
        case Mark(next_index=index):
            wire = _Message("mark", index)
        case BatchEnd(batch=batch):
            wire = _Message("end", batch)
        case ShardFailed(reason=reason):
            wire = _Message("failed", reason=reason)
    return msgspec.msgpack.encode(wire)


def decode(data: bytes) -> ShardMessage:
    wire = msgspec.msgpack.decode(data, type=_Message)
    if wire.kind == "mark":
        return Mark(wire.index)
    if wire.kind == "end":
        return BatchEnd(wire.index)
    if wire.kind == "failed":
        return ShardFailed(wire.reason)
    cameras = {}
    for v in wire.views:
        tracks = [
            TrackedBox(
                t.track_id,
                _unpack(t.box),
                t.score,
                t.is_new,
                None if t.feature is None else _unpack(t.feature),
                None if t.crop is None else _unpack(t.crop),
            )
            for t in v.tracks
        ]
        cameras[v.camera_id] = CameraView(
            v.source, v.index_in_source, _unpack(v.boxes), _unpack(v.scores), CameraFrame(tracks, _unpack(v.confident))
        )
    return ShardFrame(wire.index, cameras)


# --- the owner's side ---------------------------------------------------------------------


class RedisShardLinks:
    """One task's shards on other replicas, seen from the replica that runs the task."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        task_id: str,
        replica: str,
        environment_id: str,
        task_camera_ids: Sequence[str],
        detection_threshold: float | None,
        ttl_s: float,
        claim_wait_s: float = CLAIM_WAIT_S,
    ) -> None:
        self._client = client
        self._task_id = task_id
        self._replica = replica
        self._environment_id = environment_id
        self._task_cameras = tuple(task_camera_ids)
        self._threshold = detection_threshold
        self._ttl_s = ttl_s
        self._claim_wait_s = claim_wait_s
        self._shards: list[int] = []  # those another replica took
        self._told: _Pace | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    async def offer(self, shard: int, cameras: Sequence[Camera]) -> _RemoteInbox | None:
        camera_ids = tuple(c.camera_id for c in cameras)
        offer = ShardOffer(
            self._task_id, shard, self._replica, self._environment_id, self._task_cameras, camera_ids, self._threshold
        )
        claim = claim_key(self._task_id, shard)
        try:
            await self._client.xadd(
                offers_key(), {"offer": msgspec.json.encode(offer)}, maxlen=OFFERS_KEPT, approximate=True
            )
            async with asyncio.timeout(self._claim_wait_s + FROZEN_MARGIN_S):
                for _ in range(max(1, round(self._claim_wait_s / CLAIM_POLL_S))):  # a key has nothing to wait on
                    if (holder := await self._client.get(claim)) is not None:
                        break
                    await asyncio.sleep(CLAIM_POLL_S)
                if holder is None and await self._client.set(claim, self._replica, nx=True, ex=_seconds(self._ttl_s)):
                    return None  # nobody took it: it runs here
                holder = await self._client.get(claim)
        except UNREACHABLE as exc:
            log.warning("task %s: shard %d runs here, Redis is unreachable (%s)", self._task_id, shard, exc)
            return None
        worker = holder.decode() if isinstance(holder, bytes) else str(holder)
        if worker == self._replica:
            return None
        self._shards.append(shard)
        if self._heartbeat is None:  # the pace key says the task goes on, paused or not
            await self._tell(self._told or _Pace(-1))
            self._heartbeat = asyncio.create_task(self._keep_pace(), name=f"pace-{self._task_id}")
        log.info("task %s: cameras %s run on replica %s", self._task_id, ", ".join(camera_ids), worker)
        return _RemoteInbox(self._client, self._task_id, shard, worker, camera_ids)

    async def advance(self, progress: Progress) -> None:
        if not self._shards:
            return
        cal = progress.calibration
        pace = _Pace(progress.through, progress.last_frame, *((cal.same, cal.different) if cal else (None, None)))
        if pace == self._told:
            return
        self._told = pace
        await self._tell(pace)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        if not self._shards:
            return
        with contextlib.suppress(*UNREACHABLE, TimeoutError):
            await self._tell(_Pace(-1, stop=True))
            async with asyncio.timeout(FROZEN_MARGIN_S):
                keys = [k for s in self._shards for k in (claim_key(self._task_id, s), frames_key(self._task_id, s))]
                await self._client.delete(*keys)
                await self._client.expire(pace_key(self._task_id), _seconds(self._ttl_s))

    async def _keep_pace(self) -> None:
        """Keep the pace key alive while the task runs (its shards stop once it lapses)."""
        while True:
            await asyncio.sleep(self._ttl_s / 12)
            with contextlib.suppress(*UNREACHABLE, TimeoutError):
                async with asyncio.timeout(FROZEN_MARGIN_S):
                    await self._client.expire(pace_key(self._task_id), _seconds(2 * self._ttl_s))

    async def _tell(self, pace: _Pace) -> None:
        key = pace_key(self._task_id)
        async with asyncio.timeout(FROZEN_MARGIN_S), self._client.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"pace": msgspec.msgpack.encode(pace)}, maxlen=PACE_KEPT, approximate=False)
            pipe.expire(key, _seconds(2 * self._ttl_s))
            await pipe.execute()


class _RemoteInbox:
    """A shard another replica runs: its messages from its stream, or an error once its claim lapsed."""

    def __init__(
        self, client: aioredis.Redis, task_id: str, shard: int, worker: str, camera_ids: tuple[str, ...]
    ) -> None:
        self._client = client
        self._claim = claim_key(task_id, shard)
        self._key = frames_key(task_id, shard)
        self._worker = worker
        self._cameras = camera_ids
        self._last = "0-0"
        self._buffer: list[bytes] = []

    async def receive(self) -> ShardMessage:
        while not self._buffer:
            async with asyncio.timeout(READ_WAIT_S + FROZEN_MARGIN_S):
                read = await self._client.xread({self._key: self._last}, block=int(READ_WAIT_S * 1000), count=64)
            for _, entries in read or ():
                for entry_id, fields in entries:
                    self._last = entry_id
                    self._buffer.append(fields[b"m"])
            if not self._buffer and not await self._client.exists(self._claim):
                raise ShardError(
                    f"replica {self._worker}, which ran cameras {', '.join(self._cameras)}, stopped "
                    "(its claim on them lapsed); start the task again"
                )
        return decode(self._buffer.pop(0))


# --- the side of a replica that runs another's shard ---------------------------------------

# Runs one claimed shard to its end: builds it (catalogue, models, tracking settings) and sends
# its messages to the output, pacing itself on the pace (pipeline.camera_shard.CameraShard).
RunShard = Callable[[ShardOffer, "_ShardLink", "_ShardLink"], Awaitable[None]]


class _ShardLink:
    """A claimed shard's output (its frames stream) and pace (the owner's), on this replica."""

    def __init__(self, client: aioredis.Redis, offer: ShardOffer, replica: str, ttl_s: float) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._offer = offer
        self._replica = replica
        self._key = frames_key(offer.task_id, offer.shard)
        self._pace_last = "0-0"
        self._pace = _Pace(-1)

    async def send(self, message: ShardMessage) -> None:
        # The expiry each time: a stream its owner deleted at the task's end and a late message
        # made again goes too.
        async with asyncio.timeout(FROZEN_MARGIN_S), self._client.pipeline(transaction=False) as pipe:
            pipe.xadd(self._key, {"m": encode(message)})
            pipe.expire(self._key, _seconds(2 * self._ttl_s))
            await pipe.execute()

    async def wait_through(self, frame: int) -> Progress:
        while self._pace.through < frame:
            async with asyncio.timeout(READ_WAIT_S + FROZEN_MARGIN_S):
                read = await self._client.xread(
                    {pace_key(self._offer.task_id): self._pace_last}, block=int(READ_WAIT_S * 1000)
                )
            for _, entries in read or ():
                for entry_id, fields in entries:
                    self._pace_last = entry_id
                    pace = msgspec.msgpack.decode(fields[b"pace"], type=_Pace)
                    if pace.stop:
                        raise _Stopped()
                    self._pace = pace
            if not read and not await self._client.exists(pace_key(self._offer.task_id)):
                raise _Stopped()  # its owner has not kept it for 2 x ttl_s: gone
        p = self._pace
        calibration = ReidCalibration(p.same, p.different) if p.same is not None and p.different is not None else None
        return Progress(p.through, p.last_frame, calibration)

    async def renew(self) -> bool:
        """Keep the claim (and the frames stream) alive while the shard runs; False once it lapsed."""
        ttl_s = self._ttl_s
        async with asyncio.timeout(FROZEN_MARGIN_S), self._client.pipeline(transaction=False) as pipe:
            pipe.set(claim_key(self._offer.task_id, self._offer.shard), self._replica, xx=True, ex=_seconds(ttl_s))
            pipe.expire(self._key, _seconds(2 * ttl_s))
            held, _ = await pipe.execute()
        return bool(held)


class _Stopped(Exception):
    """The owner ended the task, or is gone."""


class ShardWorker:
    """Claims shards other replicas offer, while it has room, and runs them here."""

    def __init__(
        self,
        client: aioredis.Redis,
        replica: str,
        run_shard: RunShard,
        *,
        ttl_s: float,
        max_shards: int = MAX_SHARDS,
    ) -> None:
        self._client = client
        self._replica = replica
        self._run_shard = run_shard
        self._ttl_s = ttl_s
        self._max = max_shards
        self._running: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None
        self.shards_run = 0

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read_offers(), name="shard-offers")

    async def close(self) -> None:
        tasks = [t for t in (self._reader, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()

    async def _read_offers(self) -> None:
        last = "$"  # offers made from now on; older ones have been run by their owners
        while True:
            try:
                async with asyncio.timeout(READ_WAIT_S + FROZEN_MARGIN_S):
                    read = await self._client.xread({offers_key(): last}, block=int(READ_WAIT_S * 1000))
                for _, entries in read or ():
                    for entry_id, fields in entries:
                        last = entry_id
                        await self._consider(msgspec.json.decode(fields[b"offer"], type=ShardOffer))
            except UNREACHABLE as exc:
                log.warning("shard offers: Redis unreachable (%s); reading again in %.0f s", exc, RETRY_S)
                await asyncio.sleep(RETRY_S)

    async def _consider(self, offer: ShardOffer) -> None:
        if offer.owner == self._replica or len(self._running) >= self._max:
            return
        claim = claim_key(offer.task_id, offer.shard)
        if not await self._client.set(claim, self._replica, nx=True, ex=_seconds(self._ttl_s)):
            return  # another replica, or the owner itself, has it
        task = asyncio.create_task(self._serve(offer), name=f"shard-{offer.task_id}-{offer.shard}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _serve(self, offer: ShardOffer) -> None:
        link = _ShardLink(self._client, offer, self._replica, self._ttl_s)
        keeper = asyncio.create_task(self._keep_claim(link, asyncio.current_task()))
        cameras = ", ".join(offer.camera_ids)
        log.info("running cameras %s of task %s for replica %s", cameras, offer.task_id, offer.owner)
        try:
            await self._run_shard(offer, link, link)
            self.shards_run += 1
        except _Stopped:
            log.info("task %s ended: its cameras %s stop here", offer.task_id, cameras)
        except asyncio.CancelledError:  # this replica is stopping: the owner hears it now, not at the claim's lapse
            with contextlib.suppress(*UNREACHABLE, TimeoutError):
                await link.send(ShardFailed(f"replica {self._replica}, which ran cameras {cameras}, stopped"))
            raise
        except Exception as exc:
            log.exception("cameras %s of task %s failed here", cameras, offer.task_id)
            with contextlib.suppress(*UNREACHABLE, TimeoutError):
                await link.send(ShardFailed(f"cameras {cameras} failed on replica {self._replica}: {exc}"))
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _keep_claim(self, link: _ShardLink, serving: asyncio.Task | None) -> None:
        while True:
            await asyncio.sleep(self._ttl_s / 12)
            try:
                held = await link.renew()
            except UNREACHABLE as exc:
                log.warning("shard claim not renewed, retrying: %s", exc)
                continue
            if not held and serving is not None:  # lapsed: its owner has failed the task by now
                log.warning("the claim on a shard lapsed; it stops here")
                serving.cancel()
                return
