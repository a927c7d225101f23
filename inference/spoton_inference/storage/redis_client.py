"""The one way the service opens Redis.

``socket_timeout=None``: with a socket timeout, redis-py 8 writes every command through
``asyncio.wait_for``, which on Python 3.11 can drop a cancellation that lands as the write
completes, so a cancelled WatchTask or runner would carry on. Commands that must be bounded
in time are bounded by their callers (XREAD's own ``block``, ``asyncio.timeout``); a dead
server still fails at once on connect or on a reset connection.

One retry, at once: after Redis restarts, every pooled connection is closed by the server
and would fail its next command although Redis is back. The retry reconnects; while Redis
is really down it fails too, so callers still see the outage. Retrying is safe: commands
are idempotent, carry a deduplication token (event appends), or at worst leave a gap
(a global-id reservation repeated after its reply was lost).
"""

from __future__ import annotations

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

CONNECT_TIMEOUT_S = 5.0
# Connections one client opens at most (SPOTON_REDIS_MAX_CONNECTIONS sets the event log's);
# past it a command waits this long for a free one, then fails as unreachable.
DEFAULT_MAX_CONNECTIONS = 32
POOL_WAIT_S = 5.0
# What a call raises when Redis cannot be reached (down, restarting, loading its AOF, or a
# caller's own time bound ran out): the outage cases callers ride out instead of failing.
UNREACHABLE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
    TimeoutError,
)


def connect(url: str, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> aioredis.Redis:
    """A client on a bounded pool: commands wait for a free connection instead of opening more
    (redis-py's default pool fails with "Too many connections" past 100)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_WAIT_S,
        socket_timeout=None,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        retry=Retry(NoBackoff(), 1),
    )
    return aioredis.Redis.from_pool(pool)  # closing the client closes the pool


def sibling(client: aioredis.Redis, max_connections: int) -> aioredis.Redis:
    """A client to the same server with the same settings, on a bounded pool of its own: blocking
    reads there (XREAD BLOCK holds its connection for the whole wait) cannot take the
    connections that commands, event publishing and the replica lease need."""
    pool = client.connection_pool
    own = aioredis.BlockingConnectionPool(
        connection_class=pool.connection_class,
        max_connections=max_connections,
        timeout=POOL_WAIT_S,
        **pool.connection_kwargs,
    )
    return aioredis.Redis.from_pool(own)
