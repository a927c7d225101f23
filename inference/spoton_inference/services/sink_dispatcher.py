"""Delivers the outbox (migration 0015) to the sinks: per sink strictly in order, at least once.

One loop per replica wakes on PostgreSQL NOTIFY (sent by the outbox triggers at commit) and
at least every ``poll_interval_s`` (a notification lost with its connection, a retry come
due). Each pass bounds the pending rows per sink, refreshes the pending gauge, prunes old
finished rows now and then, and starts a worker for each enabled sink with pending rows.

A worker holds its sink's lease (storage/sink_store.py), so across replicas one worker at a
time delivers a sink; it sends the sink's oldest pending row, and only that one, until the
row is acknowledged, fails for good (``DeliveryFailed(permanent=True)``: recorded with its
reason, and the sink moves on) or is dropped by the pending bound. A transient failure keeps
the row at the head, retried after a capped exponential back-off with jitter, so that sink's
later events wait behind it while the other sinks' workers go on. Everything lives in
PostgreSQL: after a restart the pending rows are picked up where they were. A receiver may
see a delivery twice (acknowledged, but the process died before recording it): the
X-SpotOn-Delivery id lets it drop the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from spoton_inference.domain.backoff import doubling_s
from spoton_inference.domain.errors import Unavailable
from spoton_inference.services.sink_stats import OUTCOMES, SinkStats
from spoton_inference.services.sinks import Deliverer, DeliveryFailed, Sink, SinkDelivery, SinkKind

log = logging.getLogger(__name__)

# Finished deliveries older than the retention are deleted this often.
PRUNE_INTERVAL_S = 600.0
# A retry waits between (1 - JITTER) and 1 times its back-off, so replicas and sinks that
# failed together do not retry in step, and the cap still holds.
JITTER = 0.2
# A sink's lease outlives a delivery's bound by this much (and is renewed before each one).
LEASE_MARGIN_S = 30.0


@dataclasses.dataclass(frozen=True, slots=True)
class Head:
    """The oldest pending delivery of a sink, and when it may next be tried."""

    delivery: SinkDelivery
    # Seconds until it may be tried again (0: now), by the database's clock, as it was set.
    wait_s: float


class SinkOutbox(Protocol):
    """The dispatcher's side of the sinks' outbox, every outcome conditional on holding the
    sink's lease (storage/sink_store.SinkStore)."""

    async def ready_sinks(self, owner: str) -> list[str]: ...
    async def lease(self, sink_id: str, owner: str, seconds: float) -> Sink | None: ...
    async def release(self, sink_id: str, owner: str) -> None: ...
    async def head(self, sink_id: str) -> Head | None: ...
    async def delivered(self, delivery_id: int, owner: str) -> bool: ...
    async def failed(self, delivery_id: int, owner: str, reason: str) -> bool: ...
    async def retry_later(self, delivery_id: int, owner: str, reason: str, delay_s: float) -> bool: ...
    async def bound_pending(self, max_pending: int) -> dict[str, int]: ...
    async def prune(self, before: dt.datetime) -> int: ...
    async def pending_by_kind(self) -> dict[SinkKind, int]: ...


class Listening(Protocol):
    """An open wake-up subscription."""

    def is_closed(self) -> bool: ...
    async def close(self, *, timeout: float | None = None) -> None: ...  # noqa: ASYNC109 (asyncpg's own)


class OutboxNotices(Protocol):
    """Calls ``wake`` whenever a delivery is added (PostgreSQL's LISTEN/NOTIFY:
    storage/sink_store.SinkNotices); Unavailable when it cannot subscribe."""

    async def listen(self, wake: Callable[[], None]) -> Listening: ...


@dataclasses.dataclass(frozen=True, slots=True)
class DispatchSettings:
    poll_interval_s: float
    retry_initial_s: float
    retry_max_s: float
    timeout_s: float  # one delivery's bound
    max_pending: int
    retention_days: int


def backoff_s(attempts: int, initial_s: float, max_s: float, draw: Callable[[], float] = random.random) -> float:
    """The wait before attempt ``attempts + 1``, after ``attempts`` failed ones.

    >>> [backoff_s(n, 1.0, 10.0, lambda: 0.0) for n in (1, 2, 3, 4, 5)]
    [1.0, 2.0, 4.0, 8.0, 10.0]
    """
    base = doubling_s(attempts - 1, initial_s, max_s)
    return base * (1 - JITTER * draw())


class SinkDispatcher:
    def __init__(
        self,
        store: SinkOutbox,
        deliverers: Mapping[str, Deliverer],
        settings: DispatchSettings,
        *,
        owner: str,
        notices: OutboxNotices,
        stats: SinkStats | None = None,
    ) -> None:
        self._store = store
        self._deliverers = dict(deliverers)
        self._settings = settings
        self._owner = owner
        self._notices = notices
        self.stats = stats or SinkStats()
        self._lease_s = settings.timeout_s + LEASE_MARGIN_S
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._listener: Listening | None = None
        self._pruned_at: float | None = None

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="sink-dispatcher")

    @property
    def listening(self) -> bool:
        """Whether the NOTIFY wake-up is connected (else only the poll finds new deliveries)."""
        return self._listener is not None and not self._listener.is_closed()

    def describe(self) -> str:
        """The outbox and the outcomes so far, for the health report."""
        s = self.stats
        pending = ", ".join(f"{kind} {n}" for kind, n in sorted(s.pending.items()))
        totals = {outcome: sum(n for (_, o), n in s.outcomes.items() if o == outcome) for outcome in OUTCOMES}
        outcomes = ", ".join(f"{outcome} {n}" for outcome, n in totals.items())
        wake = "NOTIFY" if self.listening else f"polling every {self._settings.poll_interval_s:g}s"
        return f"pending {pending}; attempts: {outcomes}; dropped {s.dropped}; woken by {wake}"

    def wake(self) -> None:
        """Look for pending deliveries now rather than at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        """Stop delivering: rows in flight stay pending (sent again after a restart), leases
        are handed back so another replica need not wait for them to run out."""
        tasks = [t for t in (self._loop_task, *self._workers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for sink_id in list(self._workers):
            with contextlib.suppress(Exception):
                await self._store.release(sink_id, self._owner)
        self._workers.clear()
        await self._close_listener()
        for deliverer in self._deliverers.values():
            with contextlib.suppress(Exception):
                await deliverer.close()

    # -- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._listen()
                await self._housekeeping()
                for sink_id in await self._store.ready_sinks(self._owner):
                    worker = self._workers.get(sink_id)
                    if worker is None or worker.done():
                        self._start_worker(sink_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # PostgreSQL away: the rows wait in it; try again next poll
                log.warning("sink dispatcher pass failed, retrying in %.1fs: %s", self._settings.poll_interval_s, exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.poll_interval_s):
                    await self._wake.wait()

    def _start_worker(self, sink_id: str) -> None:
        worker = asyncio.create_task(self._work(sink_id), name=f"sink-{sink_id}")
        self._workers[sink_id] = worker
        # A worker that ran out of rows may have missed a wake-up meanwhile: look again.
        worker.add_done_callback(lambda _: self._wake.set())

    async def _housekeeping(self) -> None:
        dropped = await self._store.bound_pending(self._settings.max_pending)
        for sink_id, n in dropped.items():
            self.stats.dropped += n
            log.warning(
                "sink %s: %d oldest pending deliveries dropped (more than SPOTON_SINK_MAX_PENDING=%d waiting)",
                sink_id,
                n,
                self._settings.max_pending,
            )
        for kind, n in (await self._store.pending_by_kind()).items():
            self.stats.pending[kind.value] = n
        now = time.monotonic()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_INTERVAL_S:
            self._pruned_at = now
            cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=self._settings.retention_days)
            pruned = await self._store.prune(cutoff)
            if pruned:
                log.info("sink outbox: %d finished deliveries older than %s deleted", pruned, cutoff)

    async def _listen(self) -> None:
        """(Re)open the LISTEN connection; polling covers the time it is down."""
        if self._listener is not None and not self._listener.is_closed():
            return
        await self._close_listener()
        try:
            self._listener = await self._notices.listen(self._wake.set)
        except Unavailable as exc:
            log.info("sink dispatcher cannot LISTEN (%s); polling every %.1fs", exc, self._settings.poll_interval_s)

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=1.0)
            self._listener = None

    # -- one sink -----------------------------------------------------------------------------

    async def _work(self, sink_id: str) -> None:
        """Deliver the sink's rows in order until none is pending or its lease is another's."""
        try:
            while True:
                sink = await self._store.lease(sink_id, self._owner, self._lease_s)
                if sink is None:  # another replica delivers it, or it was disabled or deleted
                    return
                head = await self._store.head(sink_id)
                if head is None:
                    await self._store.release(sink_id, self._owner)
                    return
                if head.wait_s > 0:  # the head is backing off: so does the whole sink
                    await asyncio.sleep(min(head.wait_s, self._lease_s / 2))
                    continue
                await self._deliver(sink, head.delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # PostgreSQL away: a later pass starts this sink again
            log.warning("sink %s: delivery paused: %s", sink_id, exc)
            await asyncio.sleep(self._settings.poll_interval_s)

    async def _deliver(self, sink: Sink, delivery: SinkDelivery) -> None:
        deliverer = self._deliverers.get(sink.kind.value)
        started = time.monotonic()
        try:
            if deliverer is None:
                raise DeliveryFailed(f"this replica has no deliverer for {sink.kind.value} sinks")
            async with asyncio.timeout(self._settings.timeout_s):
                await deliverer.deliver(sink, delivery)
        except DeliveryFailed as exc:
            await self._failed(sink, delivery, exc.reason, exc.permanent, time.monotonic() - started)
            return
        except TimeoutError:
            reason = f"no acknowledgement within {self._settings.timeout_s:g}s (SPOTON_SINK_TIMEOUT_S)"
            await self._failed(sink, delivery, reason, False, time.monotonic() - started)
            return
        except Exception as exc:  # a deliverer's bug must not stop the sink for good
            log.exception("sink %s: deliverer raised", sink.name)
            await self._failed(sink, delivery, f"{type(exc).__name__}: {exc}", False, time.monotonic() - started)
            return
        self.stats.count(sink.kind, "delivered", time.monotonic() - started)
        await self._store.delivered(delivery.delivery_id, self._owner)

    async def _failed(self, sink: Sink, delivery: SinkDelivery, reason: str, permanent: bool, seconds: float) -> None:
        if permanent:
            self.stats.count(sink.kind, "failed", seconds)
            log.warning("sink %s: delivery %d failed for good: %s", sink.name, delivery.delivery_id, reason)
            await self._store.failed(delivery.delivery_id, self._owner, reason)
            return
        self.stats.count(sink.kind, "retried", seconds)
        delay = backoff_s(delivery.attempts + 1, self._settings.retry_initial_s, self._settings.retry_max_s)
        log.info("sink %s: delivery %d retried in %.1fs: %s", sink.name, delivery.delivery_id, delay, reason)
        await self._store.retry_later(delivery.delivery_id, self._owner, reason, delay)
