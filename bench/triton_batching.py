"""Does Triton's dynamic batching pay? One global frame of 4 cameras, side by side in one run.

    .venv/bin/python bench/triton_batching.py [--rounds 5]

Two embedded Tritons on the same model files:
  stock    the committed configs (detector max_batch_size 0, 2 instances; reid 2 instances)
  batched  reid with dynamic_batching (max_queue_delay 2 ms) and a model.py that runs all the
           requests Triton hands it in one onnxruntime call (what batching needs to pay);
           the detector cannot batch: its ONNX input is [1, 300, 300, 3].
Calls per global frame:
  detector: 4 frames one after another, or 4 at once (the task runner's gather)
  reid:     12 crops (4 cameras x 3 people) as one request (the runner), or 4 requests of 3 at once
Wall ms per global frame (best of rounds, median in brackets) and CPU ms in Triton (its
stubs included), with ``uptime``. The frames are TUD-Campus (``../shared/real``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import cv2
import numpy as np
import psutil

from spoton_inference.embedded.triton import EmbeddedTriton
from spoton_inference.pipeline.triton_models import TritonModels, crop_people
from spoton_inference.settings import REPO_ROOT, Settings

VIDEO = REPO_ROOT.parent / "shared" / "real" / "tud-campus" / "cameras" / "c01" / "sub_video_01.mp4"
# The batched variant's reid: Triton queues up to 2 ms to merge requests, and model.py runs all
# it is handed in one onnxruntime call (looping over them, as ours does, could not gain).
DYNAMIC_BATCHING = "\ndynamic_batching { max_queue_delay_microseconds: 2000 }\n"
MERGED_EXECUTE = """
    def execute(self, requests):
        crops, valid, responses = [], [], [None] * len(requests)
        for i, request in enumerate(requests):
            try:
                crops.append(validate_crops(pb_utils.get_input_tensor_by_name(request, "CROPS").as_numpy()))
                valid.append(i)
            except InputError as exc:
                responses[i] = _error_response(str(exc), invalid_arg=True)
        if crops:
            embeddings = self.embedder.embed(np.concatenate(crops))
            start = 0
            for i, c in zip(valid, crops):
                responses[i] = pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor("EMBEDDINGS", embeddings[start : start + len(c)])]
                )
                start += len(c)
        return responses
"""


def batched_repository(target: Path) -> Path:
    shutil.copytree(REPO_ROOT / "model_repository", target, ignore=shutil.ignore_patterns("__pycache__"))
    config = target / "reid" / "config.pbtxt"
    config.write_text(config.read_text() + DYNAMIC_BATCHING)
    model = target / "reid" / "1" / "model.py"
    text = model.read_text()
    head, _, _ = text.partition("    def execute(self, requests: list[Any]) -> list[Any]:")
    model.write_text(head + MERGED_EXECUTE.lstrip("\n"))
    return target


def frames() -> list[np.ndarray]:
    """Four different frames (every tenth), standing in for four cameras."""
    capture = cv2.VideoCapture(str(VIDEO))
    out = []
    for _ in range(4):
        for _ in range(10):
            ok, bgr = capture.read()
            if not ok:
                raise SystemExit(f"cannot read {VIDEO}")
        out.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    capture.release()
    return out


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def cpu_s(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


async def measure(calls: Callable[[], Awaitable[None]], proc: psutil.Process, n: int) -> tuple[float, float]:
    """Wall ms and Triton CPU ms per global frame, n global frames one after another."""
    cpu0, t0 = cpu_s(proc), time.perf_counter()
    for _ in range(n):
        await calls()
    return (time.perf_counter() - t0) * 1e3 / n, (cpu_s(proc) - cpu0) * 1e3 / n


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="spoton-triton-batching-") as tmp:
        root = Path(tmp)
        for name in ("stock", "batched"):
            (root / name).mkdir()
        tritons = {
            "stock": EmbeddedTriton(Settings(data_dir=root / "stock")),
            "batched": EmbeddedTriton(
                Settings(data_dir=root / "batched", model_repository=batched_repository(root / "repository"))
            ),
        }
        for triton in tritons.values():
            await triton.start()
        try:
            await compare(tritons, frames(), rounds)
        finally:
            for triton in tritons.values():
                await triton.stop()


async def compare(tritons: dict[str, EmbeddedTriton], rgbs: list[np.ndarray], rounds: int) -> None:
    clients = {k: TritonModels(t.grpc_url, "detector", "reid") for k, t in tritons.items()}
    try:
        await compare_with(
            clients, procs={k: psutil.Process(t.pid) for k, t in tritons.items()}, rgbs=rgbs, rounds=rounds
        )
    finally:
        for client in clients.values():
            await client.close()


async def compare_with(
    clients: dict[str, TritonModels], procs: dict[str, psutil.Process], rgbs: list[np.ndarray], rounds: int
) -> None:
    stock = clients["stock"]
    dets = [await stock.detect(f, 0.3) for f in rgbs]
    crops = [crop_people(f, d.boxes[:3]) for f, d in zip(rgbs, dets, strict=True)]
    assert all(len(c) == 3 for c in crops), [len(c) for c in crops]
    allcrops = np.concatenate(crops)
    # The batched Triton gives the same embeddings.
    ref = await stock.embed(allcrops)
    got = await asyncio.gather(*(clients["batched"].embed(c) for c in crops))
    np.testing.assert_allclose(np.concatenate(got), ref, atol=1e-5)

    def variants(models: TritonModels) -> dict:
        async def det_seq():
            for f in rgbs:
                await models.detect(f, 0.3)

        async def det_gather():
            await asyncio.gather(*(models.detect(f, 0.3) for f in rgbs))

        async def reid_one():
            await models.embed(allcrops)

        async def reid_gather():
            await asyncio.gather(*(models.embed(c) for c in crops))

        return {
            "detector 4 frames one by one": det_seq,
            "detector 4 frames at once": det_gather,
            "reid 12 crops in one request": reid_one,
            "reid 4 requests of 3 at once": reid_gather,
        }

    cases = [("stock", k, v) for k, v in variants(stock).items()]
    cases += [("batched", k, v) for k, v in variants(clients["batched"]).items() if k.startswith("reid")]
    for _, _, call in cases:
        await call()
    print(f"uptime before: {uptime()}", flush=True)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(rounds):
        for config, name, call in cases:
            results.setdefault((config, name), []).append(await measure(call, procs[config], 5))
    print(f"uptime after:  {uptime()}")
    print(f"{'config':8} {'calls per global frame (4 cameras)':32} {'wall ms best [median]':>22} {'CPU ms':>7}")
    for (config, name), runs in results.items():
        walls = [w for w, _ in runs]
        cpu = statistics.median(c for _, c in runs)
        print(f"{config:8} {name:32} {min(walls):9.0f} [{statistics.median(walls):6.0f}]      {cpu:7.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
