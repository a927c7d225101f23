"""One lookup for many askers: concurrent and recent asks for the same key share its result.

Two hundred WatchTask streams of one task each asked PostgreSQL whether the task had ended
after every event; the pool (8 connections) queued them past SPOTON_POSTGRES_TIMEOUT_S, and
every RPC needing PostgreSQL meanwhile (GetTask, the next WatchTask) answered UNAVAILABLE.
Shared, the task costs one query per ``fresh_s`` however many watch it.

    >>> import asyncio
    >>> calls = []
    >>> async def fetch(key: str) -> str:
    ...     calls.append(key)
    ...     await asyncio.sleep(0)
    ...     return key.upper()
    >>> async def main() -> list[str]:
    ...     shared = SharedLookups(fetch, fresh_s=60.0)
    ...     return await asyncio.gather(*(shared.get("t1") for _ in range(100)))
    >>> asyncio.run(main()) == ["T1"] * 100, calls
    (True, ['t1'])
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SharedLookups(Generic[K, V]):
    """``fetch(key)`` at most once per ``fresh_s`` per key; askers meanwhile share its outcome
    (its exception too). At most ``max_keys`` keys are remembered."""

    def __init__(self, fetch: Callable[[K], Awaitable[V]], fresh_s: float, max_keys: int = 4096) -> None:
        self._fetch = fetch
        self._fresh_s = fresh_s
        self._max_keys = max_keys
        self._entries: dict[K, tuple[float, asyncio.Future[V]]] = {}

    async def get(self, key: K) -> V:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or now - entry[0] >= self._fresh_s:
            self._forget_stale(now)
            lookup = asyncio.ensure_future(self._fetch(key))
            # Retrieved even when every asker was cancelled meanwhile: no "never retrieved" log.
            lookup.add_done_callback(lambda f: f.cancelled() or f.exception())
            entry = self._entries[key] = (now, lookup)
        # Shielded: one asker going away must not cancel the lookup the others wait on.
        return await asyncio.shield(entry[1])

    def _forget_stale(self, now: float) -> None:
        stale = [k for k, (at, _) in self._entries.items() if now - at >= self._fresh_s]
        for key in stale:
            del self._entries[key]
        while len(self._entries) >= self._max_keys:
            del self._entries[next(iter(self._entries))]
