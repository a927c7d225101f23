"""Capped exponential back-off, shared by everything that retries: camera reconnects, event
sink deliveries, restarts of the embedded stack. Each caller adds its own jitter.

    >>> [doubling_s(n, 1.0, 10.0) for n in range(6)]
    [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
"""

from __future__ import annotations

# Doublings past this add nothing a cap could use, and keep 2**n small for any step count.
MAX_DOUBLINGS = 60


def doubling_s(step: int, initial_s: float, max_s: float) -> float:
    """``initial_s`` doubled ``step`` times (0 gives ``initial_s``), at most ``max_s``."""
    return min(max_s, initial_s * 2 ** min(max(step, 0), MAX_DOUBLINGS))
