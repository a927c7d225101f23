"""Task event log and live task state in Redis.

Each task's events go to a Redis stream whose entry ids are ``0-<sequence>``: the sequence
is taken from a counter and the entry added in one Lua script, so sequence numbers are
gap-free, survive a service restart, and are the same for every replica that reads the
stream. The stream is trimmed to the retention setting; a reader asking for events that
were trimmed gets :class:`EventsExpired` instead of a silent gap.

An append may carry a token: the script remembers the task's last token and answers a
repeat with the sequence it already assigned, so retrying a write whose reply was lost (Redis
went away after running it) does not publish the event twice.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from spoton_inference.domain.errors import OutOfRange
from spoton_inference.domain.events import TaskEvent, TaskEventPayload, decode_event, encode_event
from spoton_inference.storage.redis_client import DEFAULT_MAX_CONNECTIONS, connect, sibling

_APPEND = """
if ARGV[4] ~= '' and redis.call('GET', KEYS[3]) == ARGV[4] then
  return tonumber(redis.call('GET', KEYS[1]))
end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '0-' .. seq, 'e', ARGV[1], 't', ARGV[2])
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[3], ARGV[4])
end
return seq
"""


class EventsExpired(OutOfRange):
    """The requested events fell out of the retention window."""


def _keys(task_id: str) -> tuple[str, str, str, str]:
    base = f"spoton:task:{task_id}"
    return f"{base}:seq", f"{base}:events", f"{base}:state", f"{base}:last"


class RedisEventLog:
    def __init__(self, client: aioredis.Redis, retention: int) -> None:
        self.client = client
        self._retention = retention
        self._append = client.register_script(_APPEND)

    @classmethod
    def from_url(cls, url: str, retention: int, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> RedisEventLog:
        return cls(connect(url, max_connections), retention)

    def on_own_pool(self, max_connections: int) -> RedisEventLog:
        """The same log on a pool of its own of ``max_connections`` (see ``redis_client.sibling``)."""
        return RedisEventLog(sibling(self.client, max_connections), self._retention)

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> None:
        await self.client.ping()

    async def append(
        self, task_id: str, payload: TaskEventPayload, *, emitted_at: float | None = None, token: str = ""
    ) -> int:
        """Publish ``payload`` and return its sequence; a repeated ``token`` is published once."""
        seq_key, stream_key, _, last_key = _keys(task_id)
        at = time.time() if emitted_at is None else emitted_at
        seq = await self._append(
            keys=[seq_key, stream_key, last_key], args=[encode_event(payload), at, self._retention, token]
        )
        return int(seq)

    async def last_sequence(self, task_id: str) -> int:
        value = await self.client.get(_keys(task_id)[0])
        return int(value or 0)

    async def set_live_state(self, task_id: str, fields: dict[str, str | int | float]) -> None:
        await self.client.hset(_keys(task_id)[2], mapping=fields)

    async def get_live_state(self, task_id: str) -> dict[str, str]:
        raw = await self.client.hgetall(_keys(task_id)[2])
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def newest(self, task_id: str) -> TaskEvent | None:
        entries = await self.client.xrevrange(_keys(task_id)[1], count=1)
        return _to_event(task_id, *entries[0]) if entries else None

    async def wait_past(self, task_id: str, after: int, block_ms: int) -> int:
        """The newest sequence once the stream has an event past ``after``; ``after`` if none
        came within ``block_ms``."""
        got = await self.client.xread({_keys(task_id)[1]: f"0-{after}"}, count=100, block=block_ms)
        if not got or not got[0][1]:
            return after
        return int(got[0][1][-1][0].split(b"-")[1])

    async def forget(self, task_id: str) -> None:
        """Drop a task's event log, sequence counter and live state (its job was deleted)."""
        await self.client.delete(*_keys(task_id))

    async def read(self, task_id: str, after: int, block_ms: int = 1000, count: int = 500) -> list[TaskEvent]:
        """Events with sequence > ``after``; waits up to ``block_ms`` when there are none yet."""
        stream_key = _keys(task_id)[1]
        entries = await self.client.xrange(stream_key, min=f"0-{after + 1}", count=count)
        if not entries and block_ms > 0:
            got = await self.client.xread({stream_key: f"0-{after}"}, count=count, block=block_ms)
            entries = got[0][1] if got else []
        events = [_to_event(task_id, entry_id, fields) for entry_id, fields in entries]
        if events and events[0].sequence != after + 1:
            raise EventsExpired(
                f"events {after + 1}..{events[0].sequence - 1} of task {task_id} are past the "
                f"retention window; resume from {events[0].sequence - 1} or later"
            )
        return events


def _to_event(task_id: str, entry_id: bytes, fields: dict[bytes, bytes]) -> TaskEvent:
    seq = int(entry_id.split(b"-")[1])
    return TaskEvent(seq, task_id, float(fields[b"t"]), decode_event(fields[b"e"]))
