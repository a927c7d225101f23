"""Which inference replicas are alive, through leases in the shared Redis.

Several replicas share one PostgreSQL and one Redis. A task runs in the replica that started
it; that replica holds a lease key, renewed well within its time to live, for as long as it
runs. A replica starting up fails only the unfinished tasks no live replica runs: its own
from before a restart, and those of replicas whose lease lapsed.

The replica id is ``SPOTON_REPLICA_ID``, by default ``<hostname>:<gRPC port>``, so a
restarted replica recognises the tasks it left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Protocol

import redis.asyncio as aioredis

from spoton_inference.storage.redis_client import UNREACHABLE

log = logging.getLogger(__name__)
# Long enough that a Redis outage rarely outlasts it; a crashed replica's tasks are failed
# at once when it comes back under the same id, and by others once its lease lapsed.
LEASE_TTL_S = 120
RENEW_EVERY_S = 10.0
# After a failed renewal (Redis unreachable), so the lease is back soon after Redis is.
RETRY_S = 1.0


class ReplicaSettings(Protocol):
    """What names a replica (the root's Settings has both)."""

    @property
    def replica_id(self) -> str: ...  # SPOTON_REPLICA_ID; "" for the default
    @property
    def grpc_port(self) -> int: ...


def replica_id(settings: ReplicaSettings) -> str:
    return settings.replica_id or f"{socket.gethostname()}:{settings.grpc_port}"


def _key(replica: str) -> str:
    return f"spoton:replica:{replica}"


class ReplicaLease:
    def __init__(self, client: aioredis.Redis, replica: str, ttl_s: int = LEASE_TTL_S) -> None:
        self.client = client
        self.replica_id = replica
        self.ttl_s = ttl_s
        self._task: asyncio.Task[None] | None = None

    async def renew(self) -> None:
        await self.client.set(_key(self.replica_id), "1", ex=self.ttl_s)

    async def alive(self, replica: str) -> bool:
        return bool(await self.client.exists(_key(replica)))

    async def start(self) -> None:
        await self.renew()
        self._task = asyncio.create_task(self._keep(), name="replica-lease")

    async def close(self) -> None:
        """Stop renewing and give the lease up (a clean stop leaves no task running)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(*UNREACHABLE):
            async with asyncio.timeout(2.0):
                await self.client.delete(_key(self.replica_id))

    async def _keep(self) -> None:
        wait = RENEW_EVERY_S
        while True:
            await asyncio.sleep(wait)
            try:
                async with asyncio.timeout(RENEW_EVERY_S):
                    await self.renew()
                wait = RENEW_EVERY_S
            except UNREACHABLE as exc:
                if wait == RENEW_EVERY_S:
                    log.warning("replica lease for %s not renewed, retrying: %s", self.replica_id, exc)
                wait = RETRY_S
