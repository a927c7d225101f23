"""Events and identity rows (pipeline/history.py) to PostgreSQL, off the frame path.

The runner hands rows over and moves on; a background task writes them about once a second:
events in one COPY, identities in one upsert that widens each identity's first/last seen.
Identities coalesce per (task, global id) while a write is pending, so a slow database costs
memory per identity, not per frame. Events are bounded: past ``max_pending_events`` the
oldest are dropped and counted. A failed write is counted and retried on the next round.

Writes are idempotent, so a retry whose first attempt did commit (the acknowledgement was
lost) stores nothing twice: identities widen, and events carry a key (``event_key``,
migration 0008) that skips one already stored.
"""

from __future__ import annotations

import collections
import dataclasses
import logging

from spoton_inference.storage.periodic import PeriodicFlush
from spoton_inference.storage.postgres import Database

log = logging.getLogger(__name__)

EVENT_COLUMNS = (
    "time",
    "task_id",
    "environment_id",
    "camera_id",
    "global_id",
    "kind",
    "global_frame_index",
    "payload",
    "event_key",
)
_INSERT_EVENTS = f"""
    INSERT INTO events ({", ".join(EVENT_COLUMNS)})
    SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::text[], $5::int[], $6::text[],
                         $7::bigint[], $8::jsonb[], $9::text[])
    ON CONFLICT DO NOTHING"""
_UPSERT_IDENTITIES = """
    INSERT INTO identities AS i (task_id, environment_id, global_id, first_seen, last_seen, last_camera_id)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::timestamptz[], $6::text[])
    ON CONFLICT (task_id, global_id) DO UPDATE SET
        first_seen = least(i.first_seen, EXCLUDED.first_seen),
        last_seen = greatest(i.last_seen, EXCLUDED.last_seen),
        last_camera_id = CASE WHEN EXCLUDED.last_seen >= i.last_seen THEN EXCLUDED.last_camera_id
                              ELSE i.last_camera_id END"""


@dataclasses.dataclass(slots=True)
class HistoryCounters:
    events_written: int = 0
    events_duplicate: int = 0  # already stored (a retried write whose first attempt committed)
    events_dropped: int = 0
    identities_written: int = 0
    failures: int = 0

    def describe(self) -> str:
        return (
            f"events written {self.events_written}, already stored {self.events_duplicate}, "
            f"dropped {self.events_dropped}; "
            f"identity updates {self.identities_written}; failed writes {self.failures}"
        )


class HistoryWriter(PeriodicFlush):
    def __init__(self, db: Database, *, max_pending_events: int = 100_000, interval_s: float = 1.0) -> None:
        self._db = db
        self._max_pending = max_pending_events
        super().__init__(interval_s, "history-writer")
        self._events: collections.deque[tuple] = collections.deque()
        self._identities: dict[tuple[object, int], tuple] = {}
        self.counters = HistoryCounters()

    def add_events(self, rows: list[tuple]) -> None:
        """Queue event rows (EVENT_COLUMNS); never blocks."""
        self._events.extend(rows)
        self._bound_events()

    def add_identities(self, rows: list[tuple]) -> None:
        """Queue identity rows ``(task_id, environment_id, global_id, first_seen, last_seen, last_camera_id)``."""
        for row in rows:
            key = (row[0], row[2])
            pending = self._identities.get(key)
            self._identities[key] = row if pending is None else _widen(pending, row)

    def _bound_events(self) -> None:
        overflow = len(self._events) - self._max_pending
        for _ in range(max(0, overflow)):  # history is best effort; the oldest go first
            self._events.popleft()
        if overflow > 0:
            self.counters.events_dropped += overflow

    async def _flush(self) -> None:
        events = list(self._events)
        self._events.clear()
        identities, self._identities = self._identities, {}
        inserted = 0
        try:
            async with self._db.pool.acquire() as conn, conn.transaction():
                if events:
                    status = await conn.execute(_INSERT_EVENTS, *(list(c) for c in zip(*events, strict=True)))
                    inserted = int(status.rsplit(" ", 1)[1])
                if identities:
                    columns = zip(*identities.values(), strict=True)
                    await conn.execute(_UPSERT_IDENTITIES, *(list(c) for c in columns))
        except Exception as exc:  # the database may be away; keep the rows for the next round
            self.counters.failures += 1
            log.warning("history write failed, retrying later: %s", exc)
            self._events.extendleft(reversed(events))
            self._bound_events()
            for key, row in identities.items():
                newer = self._identities.get(key)
                self._identities[key] = row if newer is None else _widen(row, newer)
            return
        self.counters.events_written += inserted
        self.counters.events_duplicate += len(events) - inserted
        self.counters.identities_written += len(identities)


def _widen(old: tuple, new: tuple) -> tuple:
    """One identity row covering both: earliest first seen, latest last seen and its camera."""
    latest = new if new[4] >= old[4] else old
    return (*new[:3], min(old[3], new[3]), latest[4], latest[5])
