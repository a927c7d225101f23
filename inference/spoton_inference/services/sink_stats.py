"""Counters of the sink dispatcher, read by metrics.py at scrape time.

Plain ints and floats updated on the event loop and read from the metrics thread, as the
track-point writer's counters are: a scrape may see one delivery half counted, never a
corrupt value.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses

from spoton_inference.services.sinks import SinkKind

# Upper bounds (seconds) of the delivery latency histogram: a LAN webhook to a slow receiver.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OUTCOMES = ("delivered", "retried", "failed")


@dataclasses.dataclass(slots=True)
class Latency:
    """One histogram: counts per bucket (not cumulative), their sum, their number."""

    counts: list[int] = dataclasses.field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_S))
    sum_s: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        i = bisect.bisect_left(LATENCY_BUCKETS_S, seconds)
        if i < len(self.counts):
            self.counts[i] += 1
        self.sum_s += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus buckets: (le, count at or below it), ending with +Inf."""
        out, total = [], 0
        for bound, n in zip(LATENCY_BUCKETS_S, self.counts, strict=True):
            total += n
            out.append((str(bound), total))
        out.append(("+Inf", self.count))
        return out


@dataclasses.dataclass(slots=True)
class SinkStats:
    # (kind, outcome) -> deliveries attempted with that outcome.
    outcomes: collections.Counter[tuple[str, str]] = dataclasses.field(default_factory=collections.Counter)
    # kind -> pending outbox rows, as of the dispatcher's last pass.
    pending: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(SinkKind, 0))
    # kind -> time from handing a delivery to the deliverer to its acknowledgement or failure.
    latency: dict[str, Latency] = dataclasses.field(default_factory=lambda: {k.value: Latency() for k in SinkKind})
    dropped: int = 0

    def count(self, kind: SinkKind, outcome: str, seconds: float) -> None:
        self.outcomes[(kind.value, outcome)] += 1
        self.latency[kind.value].observe(seconds)
