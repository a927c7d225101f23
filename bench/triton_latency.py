"""Detector and embedder latency through the embedded Triton, beside onnxruntime called
directly on the same ONNX files in the same run.

    .venv/bin/python bench/triton_latency.py [--frames 200]

It starts its own embedded Triton (the real tritonserver binary), takes real frames from the
generated demo environment, and prints per-call latency percentiles plus two ratios:
Triton over direct onnxruntime (the serving overhead), and the throughput gained by two
concurrent requests (two model instances on two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from spoton_client.demo import ensure_demo_environment
from spoton_inference.embedded.triton import EmbeddedTriton
from spoton_inference.pipeline.triton_models import CROP_HEIGHT, CROP_WIDTH, TritonModels
from spoton_inference.settings import REPO_ROOT, Settings

CROPS_PER_CALL = 16


def demo_frames(n: int) -> list[np.ndarray]:
    env = ensure_demo_environment(REPO_ROOT / "var" / "demo" / "env")
    frames: list[np.ndarray] = []
    for video in sorted((env / "cameras").glob("*/sub_video_*.mp4")):
        cap = cv2.VideoCapture(str(video))
        while len(frames) < n:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        cap.release()
    return frames


async def timed(calls: list[Callable[[], Awaitable[object]]], concurrency: int) -> tuple[list[float], float]:
    """Per-call latencies (ms) and total wall time (s), ``concurrency`` calls in flight."""
    latencies: list[float] = []
    queue = list(calls)

    async def worker() -> None:
        while queue:
            call = queue.pop()
            t = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - t) * 1e3)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


def direct_session(model: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    path = REPO_ROOT / "model_repository" / model / "1" / "model.onnx"
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


async def main(n_frames: int) -> None:
    frames = demo_frames(n_frames)
    rng = np.random.default_rng(0)
    crops = [
        rng.integers(0, 255, (CROPS_PER_CALL, CROP_HEIGHT, CROP_WIDTH, 3), dtype=np.uint8) for _ in range(n_frames // 4)
    ]

    det_sess, reid_sess = direct_session("detector"), direct_session("reid")
    det_input, reid_input = det_sess.get_inputs()[0].name, reid_sess.get_inputs()[0].name
    direct_det = []
    for f in frames:
        t = time.perf_counter()
        det_sess.run(None, {det_input: cv2.resize(f, (300, 300))[None]})
        direct_det.append((time.perf_counter() - t) * 1e3)
    direct_reid = []
    for c in crops:
        t = time.perf_counter()
        reid_sess.run(None, {reid_input: c})
        direct_reid.append((time.perf_counter() - t) * 1e3)
    del det_sess, reid_sess

    with tempfile.TemporaryDirectory() as tmp:
        triton = EmbeddedTriton(Settings(data_dir=Path(tmp)))
        await triton.start()
        models = TritonModels(triton.grpc_url, "detector", "reid")
        try:
            for f in frames[:5]:  # warm-up
                await models.detect(f, 0.3)
            await models.embed(crops[0])
            det1, _ = await timed([lambda f=f: models.detect(f, 0.3) for f in frames], 1)
            _, det1_wall = await timed([lambda f=f: models.detect(f, 0.3) for f in frames], 1)
            det2, det2_wall = await timed([lambda f=f: models.detect(f, 0.3) for f in frames], 2)
            reid1, _ = await timed([lambda c=c: models.embed(c) for c in crops], 1)
        finally:
            await models.close()
            await triton.stop()

    print(f"frames {len(frames)} (640x480 RGB, demo environment); crops {CROPS_PER_CALL} per embed call")
    rows = [
        ("detector, direct onnxruntime (1 thread)", direct_det),
        ("detector, via Triton (1 in flight)", det1),
        ("detector, via Triton (2 in flight)", det2),
        (f"embedder x{CROPS_PER_CALL}, direct onnxruntime", direct_reid),
        (f"embedder x{CROPS_PER_CALL}, via Triton", reid1),
    ]
    print(f"{'':45s} {'p50 ms':>8s} {'p95 ms':>8s} {'mean ms':>8s}")
    for name, values in rows:
        print(f"{name:45s} {pct(values, 50):8.2f} {pct(values, 95):8.2f} {statistics.fmean(values):8.2f}")
    print(f"ratio detector Triton/direct p50:      {pct(det1, 50) / pct(direct_det, 50):.2f}")
    print(f"ratio embedder Triton/direct p50:      {pct(reid1, 50) / pct(direct_reid, 50):.2f}")
    print(
        f"detector throughput 2 vs 1 in flight:  {det1_wall / det2_wall:.2f}x "
        f"({len(frames) / det2_wall:.1f} vs {len(frames) / det1_wall:.1f} frames/s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    asyncio.run(main(parser.parse_args().frames))
