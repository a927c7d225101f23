"""Which inference replicas are alive, through leases in the shared Redis.

Several replicas share one PostgreSQL and one Redis. A task runs in the replica that started
it; that replica holds a lease key, renewed well within its time to live
(``SPOTON_REPLICA_LEASE_TTL_S``), for as long as it runs. A replica starting up fails only the
unfinished tasks no live replica runs: its own from before a restart, and those of replicas
whose lease lapsed.

A replica that could not renew its lease for longer than its time to live cannot know whether
another replica has failed its tasks over meanwhile: it has lost the lease, and the callbacks
registered with :meth:`ReplicaLease.on_lost` stop its tasks (self-fencing). A renewal that
succeeds again gives the lease back.

The replica id is ``SPOTON_REPLICA_ID``, by default ``<hostname>:<gRPC port>``, so a
restarted replica recognises the tasks it left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis

from spoton_inference.storage.redis_client import UNREACHABLE

log = logging.getLogger(__name__)
# The default time to live (settings.replica_lease_ttl_s): long enough that a Redis outage
# rarely outlasts it; a crashed replica's tasks are failed at once when it comes back under the
# same id, and by others once its lease lapsed.
LEASE_TTL_S = 120.0
# Renewals per time to live: a few renewals lost to a Redis blip never let the lease lapse.
RENEWALS_PER_TTL = 12
# After a failed renewal (Redis unreachable), retried this often (at most the renewal interval),
# so the lease is back soon after Redis is, and a loss is noticed soon after the TTL.
RETRY_S = 1.0
# One renewal's bound (at most the renewal interval): a frozen Redis must not hold the loop past
# the moment the lease is lost.
ATTEMPT_TIMEOUT_S = 2.0


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
    """This replica's lease key, renewed every ``ttl_s / RENEWALS_PER_TTL``, and other replicas' liveness."""

    def __init__(self, client: aioredis.Redis, replica: str, ttl_s: float = LEASE_TTL_S) -> None:
        self.client = client
        self.replica_id = replica
        self.ttl_s = ttl_s
        self.renew_every_s = ttl_s / RENEWALS_PER_TTL
        self._on_lost: list[Callable[[], object]] = []
        # Monotonic time at which the newest successful renewal was sent (None: never renewed).
        self._renewed_at: float | None = None
        self._lost = False
        self._task: asyncio.Task[None] | None = None

    @property
    def lost(self) -> bool:
        """Whether the lease went unrenewed for longer than its time to live and is not back yet."""
        return self._lost

    def on_lost(self, callback: Callable[[], object]) -> None:
        """Have ``callback`` called (synchronously, from the renewal loop) once each time the
        lease is lost: once, and again only after it was renewed and then lost again."""
        self._on_lost.append(callback)

    async def renew(self) -> None:
        sent = time.monotonic()
        # Milliseconds: the time to live may be fractional (a few seconds in tests).
        await self.client.set(_key(self.replica_id), "1", px=max(1, round(self.ttl_s * 1000)))
        # Counted from when the renewal was sent, not answered: Redis counts the key's time to
        # live from later, so this replica sees its lease lapse no later than the others do.
        self._renewed_at = sent
        if self._lost:
            self._lost = False
            log.warning("replica lease for %s renewed again after it was lost", self.replica_id)

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
        every = self.renew_every_s
        wait, failing = every, False
        while True:
            await asyncio.sleep(wait)
            # Checked before renewing too: a loop stalled past the TTL let the key lapse, even
            # if the renewal now succeeds.
            self._check_lost()
            try:
                async with asyncio.timeout(min(every, ATTEMPT_TIMEOUT_S)):
                    await self.renew()
                wait, failing = every, False
            except UNREACHABLE as exc:
                if not failing:
                    log.warning("replica lease for %s not renewed, retrying: %s", self.replica_id, exc)
                wait, failing = min(RETRY_S, every), True
                self._check_lost()

    def _check_lost(self) -> None:
        if self._lost or self._renewed_at is None or time.monotonic() - self._renewed_at <= self.ttl_s:
            return
        self._lost = True
        log.error(
            "replica lease for %s not renewed for over %g s: another replica may fail its tasks over; "
            "stopping them here",
            self.replica_id,
            self.ttl_s,
        )
        for callback in self._on_lost:
            try:
                callback()
            except Exception:  # one failing callback must not keep the others from running
                log.exception("a callback for the lost lease of %s failed", self.replica_id)
