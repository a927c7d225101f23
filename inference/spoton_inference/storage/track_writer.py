"""Track-point history writes: batched, off the frame path, exactly once, surviving outages.

The pipeline hands rows to :meth:`TrackPointWriter.add` and moves on; it never waits for
PostgreSQL. Rows are cut into batches of ``batch_size``, each with an id of its own, and a
background task writes each batch as one transaction: its id into the ledger, its rows by
COPY (see ``TaskStore.write_track_point_batch``). An id the ledger already holds means the
batch was committed before but its acknowledgement was lost: it is skipped, never written
twice.

When PostgreSQL fails, batches stay in memory up to ``buffer_rows``; beyond that, whole
batches go to the :class:`~spoton_inference.storage.journal.Journal` (a local file of at
most ``journal_max_bytes``), and beyond that they are counted as lost and logged. When
PostgreSQL is back, the journal is replayed in order, then memory: the journal only ever
holds batches older than those in memory. A journal left by a previous process is replayed
once this writer starts, and :meth:`~TrackPointWriter.close` spills what it could not
write in time, so a restart loses nothing.

The background task is the only user of the journal; its file I/O runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from spoton_inference.storage.journal import Batch, Journal

log = logging.getLogger(__name__)

# Write the batch; False if its id was already in the ledger (nothing written). Raises
# BatchRejected when PostgreSQL refuses the rows themselves, anything else when it fails.
WriteBatch = Callable[[uuid.UUID, list[tuple]], Awaitable[bool]]


class BatchRejected(Exception):
    """PostgreSQL refuses the batch's rows (bad data, a violated constraint): retrying cannot
    help, and holding the batch would stop every later one behind it."""


# The journal's place under the service's data directory.
JOURNAL_FILE = Path("journal") / "track_points.journal"

MIN_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0


@dataclasses.dataclass(slots=True)
class WriterCounters:
    # Rows committed to PostgreSQL, those replayed from the journal included.
    written: int = 0
    # Rows committed from the journal.
    replayed: int = 0
    # Rows appended to the journal while PostgreSQL could not take them.
    spilled: int = 0
    # Rows of batches the ledger already held (committed before; the acknowledgement was lost).
    duplicates_skipped: int = 0
    # Rows dropped: memory at its bound and the journal full (or unwritable); memory at its hard
    # limit while a write hung (add() drops new rows); data PostgreSQL rejected; or a torn record
    # at the journal's end, left by a process that died mid-append.
    lost: int = 0
    # Write attempts that failed.
    retries: int = 0

    @property
    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class TrackPointWriter:
    def __init__(
        self,
        write_batch: WriteBatch,
        journal: Journal,
        *,
        batch_size: int = 10_000,
        buffer_rows: int = 100_000,
        flush_interval_s: float = 0.25,
        write_timeout_s: float = 30.0,
    ) -> None:
        self._write_batch = write_batch
        self._journal = journal
        self._batch_size = batch_size
        self._buffer_rows = buffer_rows
        # While a write attempt hangs (up to write_timeout_s) nothing is spilled: past this
        # many rows, add() then drops rows rather than let memory grow without bound.
        self._hard_limit = 2 * buffer_rows + batch_size
        self._in_write = False
        self._flush_interval_s = flush_interval_s
        self._write_timeout_s = write_timeout_s
        self._pending: list[tuple] = []  # rows not yet cut into a batch
        self._batches: collections.deque[Batch] = collections.deque()
        self._buffered = 0  # rows in memory: pending and batched
        # Batches formed so far, and how many of them have left memory (written, spilled or
        # lost), oldest first: batch k is settled once _retired >= k.
        self._sealed = 0
        self._retired = 0
        # flush(): memory batches up to this one must reach PostgreSQL or the journal now.
        self._durable_wanted = 0
        # flush() targets up to this one were given up: neither PostgreSQL nor the journal could take them.
        self._released = 0
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closing_at: float | None = None
        self._dropping = False
        # Whether the last write attempt succeeded.
        self.available = True
        self.counters = WriterCounters()

    @property
    def buffered(self) -> int:
        """Rows in memory, not yet written."""
        return self._buffered

    @property
    def journaled(self) -> int:
        """Rows in the journal, not yet written."""
        return self._journal.rows

    @property
    def journal_bytes(self) -> int:
        return self._journal.size_bytes

    @property
    def journal_path(self) -> str:
        return str(self._journal.path)

    async def start(self) -> None:
        """Open the journal (a data directory that cannot hold it fails here, at start-up), then
        write in the background, beginning with what an earlier run left in the journal."""
        await asyncio.to_thread(self._journal.open)
        if self._journal.torn_rows:
            self.counters.lost += self._journal.torn_rows
        if self._journal.batches:
            log.warning(
                "replaying %d track points left in %s by an earlier run", self._journal.rows, self._journal.path
            )
        self._task = asyncio.create_task(self._run(), name="track-point-writer")

    def add(self, rows: list[tuple]) -> None:
        """Queue rows; never blocks."""
        if not rows:
            return
        if self._in_write and self._buffered + len(rows) > self._hard_limit:
            self.counters.lost += len(rows)
            if not self._dropping:
                log.error(
                    "track-point memory buffer is full (%d rows) while a write to PostgreSQL hangs: "
                    "dropping new track points until it answers (lost so far: %d)",
                    self._buffered,
                    self.counters.lost,
                )
            self._dropping = True
            return
        self._dropping = False
        was_idle = not self._batches
        self._pending.extend(rows)
        self._buffered += len(rows)
        if len(self._pending) >= self._batch_size:
            self._seal(len(self._pending) // self._batch_size * self._batch_size)
            if was_idle or self._buffered > self._buffer_rows:
                self._wake.set()

    async def flush(self) -> None:
        """Wait until every row added so far is in PostgreSQL, or in the journal when
        PostgreSQL cannot take it now (it is written from there later)."""
        self._seal(len(self._pending))
        target = self._sealed
        self._durable_wanted = max(self._durable_wanted, target)
        self._wake.set()
        async with self._changed:
            await self._changed.wait_for(lambda: self._retired >= target or self._released >= target)

    async def drain(self) -> None:
        """Wait until every row added so far, and the whole journal, is in PostgreSQL."""
        self._seal(len(self._pending))
        target = self._sealed
        self._wake.set()
        async with self._changed:
            await self._changed.wait_for(lambda: self._retired >= target and self._journal.batches == 0)

    async def close(self, timeout_s: float = 3.0) -> None:
        """Write what is queued for at most ``timeout_s``, then spill the rest to the journal, for
        the next start to replay (short: a stopping service is killed after about 10 s)."""
        if self._task is None:
            return
        self._seal(len(self._pending))
        self._closing_at = asyncio.get_running_loop().time() + timeout_s
        self._wake.set()
        await self._task

    def _seal(self, n: int) -> None:
        """Cut the first ``n`` pending rows into batches."""
        for i in range(0, n, self._batch_size):
            self._batches.append(Batch(uuid.uuid4(), self._pending[i : min(i + self._batch_size, n)]))
            self._sealed += 1
        del self._pending[:n]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff, retry_at = MIN_BACKOFF_S, 0.0
        while True:
            now = loop.time()
            if self._closing_at is not None and (now >= self._closing_at or self._nothing_left()):
                await self._finish()
                await self._notify()
                return
            try:
                if now < retry_at:
                    # PostgreSQL failed recently: keep memory bounded until the next attempt.
                    await self._spill(for_flush=True)
                    await self._wait(retry_at - now)
                    continue
                from_journal = self._journal.batches > 0
                if from_journal:
                    batch = await asyncio.to_thread(self._journal.head)
                elif self._batches:
                    batch = self._batches[0]
                else:
                    await self._idle()
                    continue
                assert batch is not None
                if await self._write(batch, from_journal):
                    backoff = MIN_BACKOFF_S
                    if from_journal:
                        await asyncio.to_thread(self._journal.ack)
                    else:
                        self._retire_head()
                    # Memory waits while the journal replays: bound it, and settle flushes.
                    await self._spill(for_flush=from_journal)
                else:
                    retry_at, backoff = loop.time() + backoff, min(backoff * 2, MAX_BACKOFF_S)
            except Exception:  # the journal's disk: keep going, the rows are still held
                log.exception("track-point writer step failed; retrying in %.1fs", backoff)
                retry_at, backoff = loop.time() + backoff, min(backoff * 2, MAX_BACKOFF_S)
            finally:
                await self._notify()

    async def _write(self, batch: Batch, from_journal: bool) -> bool:
        """One attempt; True once PostgreSQL has the batch (now or before)."""
        timeout = self._write_timeout_s
        if self._closing_at is not None:
            timeout = max(min(timeout, self._closing_at - asyncio.get_running_loop().time()), 0.1)
        self._in_write = True
        try:
            async with asyncio.timeout(timeout):
                fresh = await self._write_batch(batch.batch_id, batch.rows)
        except BatchRejected as exc:
            self.counters.lost += len(batch.rows)
            log.error("LOST %d track points: PostgreSQL rejects batch %s: %s", len(batch.rows), batch.batch_id, exc)
            return True
        except Exception as exc:  # any database failure: the batch stays where it is
            self.counters.retries += 1
            if self.available:
                log.warning(
                    "PostgreSQL cannot take track points (%s: %s); keeping them (memory up to %d rows, "
                    "then the journal %s) and retrying",
                    type(exc).__name__,
                    exc,
                    self._buffer_rows,
                    self._journal.path,
                )
            self.available = False
            return False
        finally:
            self._in_write = False
        if not self.available:
            log.info("PostgreSQL takes track points again")
        self.available = True
        n = len(batch.rows)
        if fresh:
            self.counters.written += n
            self.counters.replayed += n if from_journal else 0
        else:
            self.counters.duplicates_skipped += n
            log.info("track-point batch %s was already written (its acknowledgement was lost): skipped", batch.batch_id)
        return True

    async def _spill(self, *, for_flush: bool, everything: bool = False) -> None:
        """Move memory batches to the journal: those past the bound, those a flush waits for
        (``for_flush``), or all (``everything``)."""
        while self._batches:
            over_bound = self._buffered > self._buffer_rows
            if not (everything or over_bound or (for_flush and self._retired < self._durable_wanted)):
                return
            batch = self._batches[0]
            try:
                appended = await asyncio.to_thread(self._journal.append, batch)
            except OSError as exc:
                log.error("cannot append to the track-point journal %s: %s", self._journal.path, exc)
                appended = False
            if appended:
                self.counters.spilled += len(batch.rows)
            elif everything or over_bound:
                self.counters.lost += len(batch.rows)
                log.error(
                    "LOST %d track points: PostgreSQL cannot take them, memory is at its bound "
                    "(SPOTON_WRITER_BUFFER_ROWS=%d) and the journal %s is full "
                    "(SPOTON_WRITER_JOURNAL_MAX_BYTES=%d); %d lost so far. Bring PostgreSQL back or raise the limits.",
                    len(batch.rows),
                    self._buffer_rows,
                    self._journal.path,
                    self._journal.max_bytes,
                    self.counters.lost,
                )
            else:
                # Only a flush asked, and there is room in memory: keep the rows, release the flush.
                self._released = self._durable_wanted
                return
            self._retire_head()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _retire_head(self) -> None:
        batch = self._batches.popleft()
        self._buffered -= len(batch.rows)
        self._retired += 1

    def _nothing_left(self) -> bool:
        return not self._batches and not self._pending and self._journal.batches == 0

    async def _idle(self) -> None:
        """Nothing batched: wait for a batch, or cut what is pending after the flush interval."""
        self._wake.clear()
        try:
            async with asyncio.timeout(self._flush_interval_s):
                await self._wake.wait()
        except TimeoutError:
            self._seal(len(self._pending))

    async def _wait(self, seconds: float) -> None:
        """Sleep until a retry is due, woken early by a flush, a close or memory past its bound."""
        if self._closing_at is not None:
            seconds = min(seconds, self._closing_at - asyncio.get_running_loop().time())
        self._wake.clear()
        try:
            async with asyncio.timeout(max(seconds, 0.0)):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _finish(self) -> None:
        """Closing: what is still in memory goes to the journal, for the next start."""
        self._seal(len(self._pending))
        if self._batches:
            log.warning(
                "stopping with %d track points unwritten: keeping them in %s for the next start",
                self._buffered,
                self._journal.path,
            )
        await self._spill(for_flush=False, everything=True)
        await asyncio.to_thread(self._journal.close)
