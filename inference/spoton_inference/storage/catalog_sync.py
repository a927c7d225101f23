"""Keep every replica's catalogue cache current, through Redis pub/sub.

Each replica caches the catalogue (environments, cameras, homographies) in memory and writes
changes through to PostgreSQL. A change made on one replica is announced on
:data:`CHANNEL`; the others reload their cache from PostgreSQL when they hear it. A replica
that was cut off from Redis may have missed announcements, so it reloads everything once it
is subscribed again. Announcing is best effort: PostgreSQL stays the record, and a lost
message costs staleness until the next change or reconnect, never data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from spoton_inference.storage.redis_client import UNREACHABLE

log = logging.getLogger(__name__)
CHANNEL = "spoton:catalog"
RETRY_S = 1.0


class CatalogSync:
    """Announces this replica's catalogue changes and applies the other replicas'.

    ``reload`` (given to :meth:`start`) re-reads the whole catalogue from PostgreSQL (a few
    environments: cheaper to reason about than patching one entry, and it also catches what a
    missed message changed). It is given at start, not at construction, because the catalogue
    is built with this object's :meth:`changed` as its listener.
    """

    def __init__(self, client: aioredis.Redis, replica: str) -> None:
        self._client = client
        self._replica = replica
        self._reload: Callable[[], Awaitable[None]] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.subscribed = asyncio.Event()
        self.reloads = 0

    def start(self, reload: Callable[[], Awaitable[None]]) -> None:
        self._reload = reload
        self._listener = asyncio.create_task(self._listen(), name="catalog-sync")

    def changed(self, environment_id: str) -> None:
        """Announce a change of ``environment_id`` (called by the catalogue after it is stored)."""
        task = asyncio.create_task(self._announce(environment_id), name="catalog-announce")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def _announce(self, environment_id: str) -> None:
        try:
            await self._client.publish(CHANNEL, f"{self._replica}|{environment_id}")
        except UNREACHABLE as exc:
            log.warning("catalogue change of %s not announced (Redis unreachable: %s)", environment_id, exc)

    async def _listen(self) -> None:
        first = True
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    if not first:  # announcements may have been missed while cut off
                        await self._apply()
                    first = False
                    self.subscribed.set()
                    async for message in pubsub.listen():
                        if message["type"] != "message":
                            continue
                        replica, _, _ = message["data"].decode().partition("|")
                        if replica != self._replica:
                            await self._apply()
            except UNREACHABLE as exc:
                self.subscribed.clear()
                log.warning("catalogue sync lost Redis (%s); retrying", exc)
                await asyncio.sleep(RETRY_S)

    async def _apply(self) -> None:
        assert self._reload is not None  # the listener that calls this runs only after start()
        try:
            await self._reload()
            self.reloads += 1
        except Exception as exc:  # PostgreSQL away: the next announcement or reconnect retries
            log.warning("catalogue reload failed: %s", exc)
