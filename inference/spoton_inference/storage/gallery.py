"""The Re-ID identity gallery, mirrored to Redis and bounded in size and age.

The tracker keeps its identities (global id, smoothed embedding, last map position) in
memory. Mirroring them here lets a restarted service, or a second replica, pick up the
same identities instead of minting new global ids for people already seen.

Layout, per scope (a task or an environment, the caller's choice)::

    spoton:gallery:{<scope>}:entries   hash    global_id -> msgpack [camera, last_seen, map_xy, f32 bytes]
    spoton:gallery:{<scope>}:seen      zset    global_id scored by last_seen
    spoton:gallery:{<scope>}:next_id   string  the global-id counter (see reserve_ids)

The ``{scope}`` hash tag keeps a scope's keys in one Redis Cluster slot, which the Lua
scripts need.

**Which clock bounds the age.** ``now`` is the newest ``last_seen`` in the scope, not
``time.time()``: entries carry the tracker's own time, which may be video time in a
replay running faster than real time, and replicas' wall clocks may disagree. Ageing by
the data keeps the bound exact and identical for every replica. A scope that stops being
written therefore stops ageing, so both keys also get a wall-clock TTL of ``max_age_s``,
refreshed on every upsert: an abandoned scope disappears by itself. One consequence: a
``last_seen`` far in the future (a broken clock) ages out everything else.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import msgspec
import numpy as np
import redis.asyncio as aioredis

from spoton_inference.storage.redis_client import connect

# Redis's Lua cannot unpack() more than ~8000 values; commands on many members are chunked.
_LUA_HELPERS = """
local function chunked(cmd, key, items)
  for i = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 999, #items)))
  end
end
local function drop(entries, seen, ids)
  if #ids > 0 then
    chunked('ZREM', seen, ids)
    chunked('HDEL', entries, ids)
  end
  return #ids
end
-- %.17g: Lua's default number formatting (%.14g) would shift the cutoff.
local function fmt(x) return string.format('%.17g', x) end
"""

# KEYS: entries, seen. ARGV: max_size, max_age_s, ttl_ms, then (id, last_seen, blob) triples.
# An entry replaces the stored one only if it is at least as recent, so replicas writing
# the same identity out of order converge on the newest state.
_UPSERT = (
    _LUA_HELPERS
    + """
local entries, seen = KEYS[1], KEYS[2]
local max_size, max_age, ttl_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV, 3 do
  local id, ts = ARGV[i], ARGV[i + 1]
  local cur = redis.call('ZSCORE', seen, id)
  if not cur or tonumber(cur) <= tonumber(ts) then
    redis.call('ZADD', seen, ts, id)
    redis.call('HSET', entries, id, ARGV[i + 2])
  end
end
local top = redis.call('ZREVRANGE', seen, 0, 0, 'WITHSCORES')
if #top == 0 then return 0 end
local dropped = drop(entries, seen, redis.call('ZRANGEBYSCORE', seen, '-inf', '(' .. fmt(tonumber(top[2]) - max_age)))
local extra = redis.call('ZCARD', seen) - max_size
if extra > 0 then
  dropped = dropped + drop(entries, seen, redis.call('ZRANGE', seen, 0, extra - 1))
end
redis.call('PEXPIRE', entries, ttl_ms)
redis.call('PEXPIRE', seen, ttl_ms)
return dropped
"""
)

# KEYS: entries, seen. ARGV: max_size, max_age_s. Returns id, blob, id, blob... newest first.
# The bounds are applied again on read so that a client configured with tighter bounds
# than the writer still sees only what it allows.
_LOAD = (
    _LUA_HELPERS
    + """
local entries, seen = KEYS[1], KEYS[2]
local top = redis.call('ZREVRANGE', seen, 0, 0, 'WITHSCORES')
if #top == 0 then return {} end
local cutoff = fmt(tonumber(top[2]) - tonumber(ARGV[2]))
local ids = redis.call('ZREVRANGEBYSCORE', seen, '+inf', cutoff, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for i = 1, #ids, 1000 do
  local part = {unpack(ids, i, math.min(i + 999, #ids))}
  local blobs = redis.call('HMGET', entries, unpack(part))
  for j = 1, #part do
    if blobs[j] then
      out[#out + 1] = part[j]
      out[#out + 1] = blobs[j]
    end
  end
end
return out
"""
)


@dataclasses.dataclass(frozen=True, slots=True)
class GalleryEntry:
    """One identity as the tracker last saw it.

    ``embedding`` is a float32 unit vector (or None before the first Re-ID crop); entries
    read back from Redis hold a read-only view of the stored bytes. The generated ``==``
    compares arrays elementwise and so raises for embeddings: compare fields instead.
    """

    global_id: int
    embedding: np.ndarray | None
    map_xy: tuple[float, float] | None
    camera_id: str
    last_seen: float


class _Packed(msgspec.Struct, array_like=True, frozen=True):
    """Wire form of an entry: a msgpack array, the embedding as raw little-endian float32."""

    camera_id: str
    last_seen: float
    map_xy: tuple[float, float] | None
    embedding: bytes | None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Packed)


def _pack(entry: GalleryEntry) -> bytes:
    emb = None
    if entry.embedding is not None:
        vec = np.asarray(entry.embedding)
        if vec.ndim != 1:
            raise ValueError(f"embedding of global id {entry.global_id} must be 1-D, got shape {vec.shape}")
        # Fixed endianness, so replicas on any architecture read the same vector.
        emb = np.ascontiguousarray(vec, dtype="<f4").tobytes()
    map_xy = None if entry.map_xy is None else (float(entry.map_xy[0]), float(entry.map_xy[1]))
    return _encoder.encode(_Packed(entry.camera_id, float(entry.last_seen), map_xy, emb))


def _unpack(global_id: int, blob: bytes) -> GalleryEntry:
    p = _decoder.decode(blob)
    emb = None if p.embedding is None else np.frombuffer(p.embedding, dtype="<f4")
    return GalleryEntry(global_id, emb, p.map_xy, p.camera_id, p.last_seen)


class RedisGallery:
    """Bounded, shared identity gallery: at most ``max_size`` entries per scope, none older
    than ``max_age_s`` before the newest one (see the module docstring for the clock).

    The client must return bytes (``decode_responses=False``, redis-py's default).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        max_size: int,
        max_age_s: float,
        prefix: str = "spoton:gallery",
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        if not (max_age_s > 0 and math.isfinite(max_age_s)):
            raise ValueError(f"max_age_s must be positive and finite, got {max_age_s}")
        self.client = client
        self.max_size = max_size
        self.max_age_s = max_age_s
        self.prefix = prefix
        self._upsert = client.register_script(_UPSERT)
        self._load = client.register_script(_LOAD)

    @classmethod
    def from_url(cls, url: str, *, max_size: int, max_age_s: float, prefix: str = "spoton:gallery") -> RedisGallery:
        return cls(connect(url), max_size=max_size, max_age_s=max_age_s, prefix=prefix)

    async def close(self) -> None:
        await self.client.aclose()

    def _keys(self, scope: str) -> tuple[str, str, str]:
        if not scope:
            raise ValueError("scope must not be empty")
        base = f"{self.prefix}:{{{scope}}}"
        return f"{base}:entries", f"{base}:seen", f"{base}:next_id"

    async def upsert(self, scope: str, entries: Sequence[GalleryEntry]) -> None:
        """Write ``entries``, then trim the scope to its bounds, all in one atomic script.

        An entry older than the one stored for its global id is ignored, so concurrent
        writers cannot roll an identity back. Refreshes the scope's TTL.
        """
        if not entries:
            return
        entries_key, seen_key, _ = self._keys(scope)
        args: list[str | int | bytes] = [self.max_size, repr(float(self.max_age_s)), self._ttl_ms()]
        for e in entries:
            if not math.isfinite(e.last_seen):
                raise ValueError(f"last_seen of global id {e.global_id} is not finite: {e.last_seen}")
            args += [int(e.global_id), repr(float(e.last_seen)), _pack(e)]
        await self._upsert(keys=[entries_key, seen_key], args=args)

    async def load(self, scope: str) -> list[GalleryEntry]:
        """The live entries of ``scope``, most recently seen first, within this client's bounds."""
        entries_key, seen_key, _ = self._keys(scope)
        flat = await self._load(keys=[entries_key, seen_key], args=[self.max_size, repr(float(self.max_age_s))])
        return [_unpack(int(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]

    async def reserve_ids(self, scope: str, count: int) -> range:
        """``count`` fresh global ids, unique across every client of this Redis.

        One INCRBY, so two replicas can never be handed the same id. The counter has no
        TTL and survives :meth:`clear` unless asked: ids also key the embedding history in
        PostgreSQL, where reuse would merge two people. Ids start at 1.
        """
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        if count == 0:
            return range(0)
        high = int(await self.client.incrby(self._keys(scope)[2], count))
        return range(high - count + 1, high + 1)

    async def clear(self, scope: str, *, reset_ids: bool = False) -> None:
        """Forget every entry of ``scope`` (and its id counter if ``reset_ids``)."""
        entries_key, seen_key, counter_key = self._keys(scope)
        keys = [entries_key, seen_key] + ([counter_key] if reset_ids else [])
        await self.client.delete(*keys)

    def _ttl_ms(self) -> int:
        return max(1, math.ceil(self.max_age_s * 1000))
