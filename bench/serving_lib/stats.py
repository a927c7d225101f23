"""Latency and throughput summaries, and the ratios the serving benchmark prints.

>>> s = summarize([10.0, 20.0, 30.0, 40.0], wall_s=2.0)
>>> (s.count, s.rps, s.p50_ms)
(4, 2.0, 25.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True, slots=True)
class Summary:
    """One measured series: calls answered (``count``), failed calls, throughput and latency."""

    count: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float

    def to_json(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear between ranks as numpy's default; NaN when empty.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(latencies_ms: Sequence[float], wall_s: float, errors: int = 0) -> Summary:
    """Throughput of the answered calls over ``wall_s``, with their p50 and p99."""
    rps = len(latencies_ms) / wall_s if wall_s > 0 else math.nan
    return Summary(len(latencies_ms), errors, rps, percentile(latencies_ms, 50), percentile(latencies_ms, 99))


def ratio(ours: float, ceiling: float) -> float:
    """``ours / ceiling``; NaN when the ceiling is missing or zero.

    >>> ratio(45.0, 50.0)
    0.9
    """
    if not ceiling or math.isnan(ceiling) or math.isnan(ours):
        return math.nan
    return ours / ceiling
