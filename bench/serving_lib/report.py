"""The serving benchmark's table: each figure beside its ceiling, the ratio, and the target.

>>> print(table([Row("Detect c=1", "45.0 rps", "50.0 rps", 0.9, None)]))
figure      SpotOn    ceiling   ratio  target
----------  --------  --------  -----  ------
Detect c=1  45.0 rps  50.0 rps  0.90
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from serving_lib.stats import Summary
from serving_lib.targets import Check

HEADER = ("figure", "SpotOn", "ceiling", "ratio", "target")


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """One line of the table; ``ceiling`` is "" where a figure has none (SSE, GetHealth)."""

    figure: str
    ours: str
    ceiling: str
    ratio: float | None
    check: Check | None

    def cells(self) -> tuple[str, ...]:
        ratio = "" if self.ratio is None else ("n/a" if math.isnan(self.ratio) else f"{self.ratio:.2f}")
        check = "" if self.check is None else f"{self.check.verdict} ({self.check.target})"
        return (self.figure, self.ours, self.ceiling, ratio, check)


def rate(summary: Summary, unit: str = "rps") -> str:
    """``"45.1 rps, p50 21.7 / p99 30.2 ms"``; failed calls said when there were any."""
    text = f"{summary.rps:.1f} {unit}, p50 {summary.p50_ms:.1f} / p99 {summary.p99_ms:.1f} ms"
    return text + (f", {summary.errors} errors" if summary.errors else "")


def table(rows: list[Row]) -> str:
    """Rows as aligned plain-text columns, trailing blanks trimmed."""
    cells = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """What the figures depend on: the cores, and how busy the machine was."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()}


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # NaN (a figure that could not be taken) is written as null, which JSON readers accept.
    path.write_text(json.dumps(_nan_to_none(doc), indent=2) + "\n")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value
