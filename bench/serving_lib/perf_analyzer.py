"""Triton's own ceiling for the detector, measured with Triton's ``perf_analyzer``.

``make bench-serving`` installs it (tritonclient 2.51.0, the newest whose binary runs on
Debian 12's glibc, with libcudart from ``nvidia-cuda-runtime-cu12``, which it loads even on
CPU) into ``.venv/perf-analyzer`` with ``pip --target``: .venv itself pins a newer
tritonclient. It also needs Debian's ``libb64-0d``.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import dataclasses
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from serving_lib.stats import Summary
from spoton_inference.settings import REPO_ROOT

PERF_ANALYZER_DIR = REPO_ROOT / ".venv" / "perf-analyzer"
BINARY = PERF_ANALYZER_DIR / "bin" / "perf_analyzer"
CUDART_DIR = PERF_ANALYZER_DIR / "nvidia" / "cuda_runtime" / "lib"
US_PER_MS = 1e3
RUN_TIMEOUT_S = 600.0


def available() -> bool:
    return BINARY.is_file() and CUDART_DIR.is_dir()


async def detector_ceiling(
    triton_grpc_url: str, model: str, frame_rgb: np.ndarray, score_threshold: float, concurrency: int, requests: int
) -> Summary:
    """perf_analyzer over gRPC at ``concurrency``, ``requests`` inferences on ``frame_rgb``.

    The frame goes over gRPC, as the issue measured it: perf_analyzer's shared-memory mode
    refuses models with optional inputs, and the detector's inputs are all optional (IMAGE or
    IMAGE_ENCODED).
    """
    with tempfile.TemporaryDirectory(prefix="spoton-perf-") as tmp:
        # JSON input data: it may leave out the model's optional inputs (IMAGE_ENCODED, say),
        # which a directory of input files may not.
        data = Path(tmp) / "data.json"
        image = {
            "b64": base64.b64encode(np.ascontiguousarray(frame_rgb, np.uint8).tobytes()).decode(),
            "shape": list(frame_rgb.shape),
        }
        data.write_text(json.dumps({"data": [{"IMAGE": image, "SCORE_THRESHOLD": [score_threshold]}]}))
        report = Path(tmp) / "report.csv"
        argv = [
            str(BINARY),
            "-m",
            model,
            "-i",
            "grpc",
            "-u",
            triton_grpc_url,
            "--input-data",
            str(data),
            "--concurrency-range",
            str(concurrency),
            # A fixed number of requests, no stability search: on a busy machine the search
            # may never settle.
            "--request-count",
            str(requests),
            "-f",
            str(report),
        ]
        env = {**os.environ, "LD_LIBRARY_PATH": f"{CUDART_DIR}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=RUN_TIMEOUT_S)
        if process.returncode != 0 or not report.is_file():
            raise RuntimeError(f"perf_analyzer failed (exit {process.returncode}): {out.decode()[-2000:]}")
        return dataclasses.replace(summary_from_csv(report.read_text()), count=requests)


def summary_from_csv(text: str) -> Summary:
    """The first row of perf_analyzer's ``-f`` CSV report (latencies there are microseconds).

    >>> summary_from_csv("Concurrency,Inferences/Second,p50 latency,p99 latency\\n2,100.5,18800,25000\\n")
    Summary(count=0, errors=0, rps=100.5, p50_ms=18.8, p99_ms=25.0)
    """
    row = next(csv.DictReader(io.StringIO(text)))
    return Summary(
        count=0,
        errors=0,
        rps=float(row["Inferences/Second"]),
        p50_ms=float(row["p50 latency"]) / US_PER_MS,
        p99_ms=float(row["p99 latency"]) / US_PER_MS,
    )
