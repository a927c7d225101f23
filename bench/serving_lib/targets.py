"""The issue's targets for ``make bench-serving`` (CPU), checked against measured figures.

>>> detect_target(throughput_ratio=0.92, added_p50_ms=2.5).ok
True
"""

from __future__ import annotations

import dataclasses
import math

DETECT_MIN_RATIO = 0.9
DETECT_MAX_ADDED_P50_MS = 3.0
TASK_MIN_RATIO = 0.85
SSE_MAX_P99_LAG_MS = 200.0
HEALTH_MIN_RPS = 5000.0
HEALTH_MAX_P99_MS = 20.0


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """One target: what it asks, and whether the measurement met it."""

    target: str
    ok: bool

    @property
    def verdict(self) -> str:
        return "PASS" if self.ok else "MISS"


def _ge(value: float, bound: float) -> bool:
    return not math.isnan(value) and value >= bound


def _le(value: float, bound: float) -> bool:
    return not math.isnan(value) and value <= bound


def detect_target(throughput_ratio: float, added_p50_ms: float) -> Check:
    return Check(
        f">= {DETECT_MIN_RATIO}x Triton, added p50 <= {DETECT_MAX_ADDED_P50_MS:g} ms",
        _ge(throughput_ratio, DETECT_MIN_RATIO) and _le(added_p50_ms, DETECT_MAX_ADDED_P50_MS),
    )


def task_target(throughput_ratio: float) -> Check:
    return Check(f">= {TASK_MIN_RATIO}x replay", _ge(throughput_ratio, TASK_MIN_RATIO))


def sse_target(connected_share: float, lost: int, p99_lag_ms: float) -> Check:
    return Check(
        f"100% connected, 0 lost, p99 lag <= {SSE_MAX_P99_LAG_MS:g} ms",
        connected_share == 1.0 and lost == 0 and _le(p99_lag_ms, SSE_MAX_P99_LAG_MS),
    )


def health_target(rps: float, p99_ms: float, errors: int) -> Check:
    return Check(
        f">= {HEALTH_MIN_RPS:g} rps, p99 <= {HEALTH_MAX_P99_MS:g} ms, no errors",
        errors == 0 and _ge(rps, HEALTH_MIN_RPS) and _le(p99_ms, HEALTH_MAX_P99_MS),
    )
