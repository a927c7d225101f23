"""ghz (``../shared/tools/ghz``, see its README) runs, read from its JSON report (``-O json``).

Calls go to the service through server reflection, or through the shipped protoset.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

from serving_lib.stats import Summary
from spoton_inference.settings import REPO_ROOT

GHZ = REPO_ROOT.parent / "shared" / "tools" / "ghz"
PROTOSET = REPO_ROOT / "proto" / "spoton.protoset"
NS_PER_MS = 1e6
# ghz's own limit on one run, well past any run here: a hung run fails the bench instead of stalling it.
RUN_TIMEOUT_S = 600.0


@dataclasses.dataclass(frozen=True, slots=True)
class GhzCall:
    """One ghz run: ``method`` (``package.Service/Method``) ``total`` times, ``concurrency`` in flight.

    The request is ``data_file`` (a serialized protobuf message, ghz's ``--binary-file``) or
    the JSON ``data``; the schema comes from ``protoset``, or from server reflection when None.
    """

    method: str
    concurrency: int
    total: int
    api_key: str
    data: str = "{}"
    data_file: Path | None = None
    protoset: Path | None = PROTOSET

    def argv(self, target: str) -> list[str]:
        schema = ["--protoset", str(self.protoset)] if self.protoset else []
        request = ["--binary-file", str(self.data_file)] if self.data_file else ["-d", self.data]
        metadata = json.dumps({"authorization": f"Bearer {self.api_key}"})
        return [
            str(GHZ),
            "--insecure",
            *schema,
            "--call",
            self.method,
            *request,
            "--metadata",
            metadata,
            "-c",
            str(self.concurrency),
            "-n",
            str(self.total),
            "-O",
            "json",
            target,
        ]


async def run_ghz(target: str, call: GhzCall) -> dict[str, Any]:
    """ghz's JSON report of ``call`` against ``target``."""
    process = await asyncio.create_subprocess_exec(
        *call.argv(target), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=RUN_TIMEOUT_S)
    if not out:
        raise RuntimeError(f"ghz {call.method} gave no report (exit {process.returncode}): {err.decode()[-2000:]}")
    return json.loads(out)


def summary_from_report(report: dict[str, Any]) -> Summary:
    """Throughput and p50/p99 of a ghz JSON report; every non-OK status counts as an error.

    ghz's ``rps`` counts every call, failed ones too, and its latency distribution is over
    the OK calls; durations are nanoseconds.
    """
    codes: dict[str, int] = report.get("statusCodeDistribution") or {}
    ok = codes.get("OK", 0)
    errors = sum(codes.values()) - ok
    latencies = {row["percentage"]: row["latency"] / NS_PER_MS for row in report.get("latencyDistribution") or []}
    total_s = report["total"] / 1e9
    return Summary(
        count=ok,
        errors=errors,
        rps=ok / total_s if total_s > 0 else float("nan"),
        p50_ms=latencies.get(50, float("nan")),
        p99_ms=latencies.get(99, float("nan")),
    )


def error_text(report: dict[str, Any]) -> str:
    """ghz's error distribution, for a message: ``"Unavailable: ... x3"``."""
    return "; ".join(f"{text} x{n}" for text, n in (report.get("errorDistribution") or {}).items())
