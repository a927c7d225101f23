"""The one way the service opens Redis.

``socket_timeout=None``: with a socket timeout, redis-py 8 writes every command through
``asyncio.wait_for``, which on Python 3.11 can drop a cancellation that lands as the write
completes, so a cancelled WatchTask or runner would carry on. Commands that must be bounded
in time are bounded by their callers (XREAD's own ``block``, ``asyncio.timeout``); a dead
server still fails at once on connect or on a reset connection.
"""

from __future__ import annotations

import redis.asyncio as aioredis

CONNECT_TIMEOUT_S = 5.0


def connect(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, socket_timeout=None, socket_connect_timeout=CONNECT_TIMEOUT_S)
