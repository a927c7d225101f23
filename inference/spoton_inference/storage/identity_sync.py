"""Mirroring the tracker's identities to Redis (gallery) and PostgreSQL (embedding history), off the frame path.

The runner calls :meth:`IdentitySync.offer` once in a while with what changed; it never
waits. A background task writes the latest state per identity: only the newest entry of an
identity is kept while a write is pending (so a slow Redis coalesces rather than queues),
embedding rows are bounded, and a failed write is counted and retried on the next round.
Neither store is needed for tracking: with both down, tracking goes on unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Sequence

from spoton_inference.storage.embedding_store import EmbeddingRow, EmbeddingStore
from spoton_inference.storage.gallery import GalleryEntry, RedisGallery
from spoton_inference.storage.periodic import PeriodicFlush
from spoton_inference.tracking.identities import IdentityState

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class SyncCounters:
    gallery_entries_written: int = 0
    embeddings_written: int = 0
    embeddings_dropped: int = 0
    failures: int = 0


def snapshot(
    states: Sequence[IdentityState], *, task_id: uuid.UUID, environment_id: str, start_time: float, fps: float
) -> tuple[list[GalleryEntry], list[EmbeddingRow]]:
    """Gallery entries and embedding rows for the tracker's identities (``last_seen`` in video time)."""
    entries = [
        GalleryEntry(s.global_id, s.embedding, s.last_xy, s.last_camera, start_time + s.last_frame / fps)
        for s in states
    ]
    rows = [
        EmbeddingRow(task_id, environment_id, s.last_camera, s.global_id, s.last_frame, s.embedding)
        for s in states
        if s.embedding is not None
    ]
    return entries, rows


class IdentitySync(PeriodicFlush):
    def __init__(
        self,
        gallery: RedisGallery | None,
        embeddings: EmbeddingStore | None,
        *,
        max_pending_embeddings: int = 10_000,
        interval_s: float = 1.0,
    ) -> None:
        self._gallery = gallery
        self._embeddings = embeddings
        self._max_pending = max_pending_embeddings
        super().__init__(interval_s, "identity-sync")
        self._entries: dict[tuple[str, int], GalleryEntry] = {}
        self._rows: list[EmbeddingRow] = []
        self.counters = SyncCounters()

    def offer(self, scope: str, entries: Sequence[GalleryEntry], rows: Sequence[EmbeddingRow]) -> None:
        """Queue the newest state of some identities; never blocks."""
        for entry in entries:
            self._entries[(scope, entry.global_id)] = entry
        self._rows.extend(rows)
        self._bound_rows()

    def _bound_rows(self) -> None:
        overflow = len(self._rows) - self._max_pending
        if overflow > 0:  # history is best effort; the oldest rows go first
            del self._rows[:overflow]
            self.counters.embeddings_dropped += overflow

    async def _flush(self) -> None:
        entries, self._entries = self._entries, {}
        rows, self._rows = self._rows, []
        by_scope: dict[str, list[GalleryEntry]] = {}
        for (scope, _), entry in entries.items():
            by_scope.setdefault(scope, []).append(entry)
        try:
            if self._gallery is not None:
                for scope, items in by_scope.items():
                    await self._gallery.upsert(scope, items)
                    self.counters.gallery_entries_written += len(items)
            if self._embeddings is not None and rows:
                await self._embeddings.write(rows)
                self.counters.embeddings_written += len(rows)
        except Exception as exc:  # a store outage must not stop tracking
            self.counters.failures += 1
            log.warning("identity sync failed, retrying later: %s", exc)
            for (scope, gid), entry in entries.items():  # newer offers win over the failed ones
                self._entries.setdefault((scope, gid), entry)
            self._rows[:0] = rows
            self._bound_rows()
