"""How a ``Detect`` frame reaches Triton: the ways side by side, in one run.

    .venv/bin/python bench/detect_transport.py [--seconds 3] [--rounds 2]

Starts its own embedded Triton and three bare ``Detect`` servers (the real InferenceServicer
over TritonModels, without auth or storage, each a process of its own), then sends the same
640x480 JPEG (TUD-Campus, ``../shared/real``) every way:

==================  =====================================================================
``triton-grpc``     TritonModels.detect, raw RGB inside the gRPC request (the ceiling
                    ``perf_analyzer`` measures)
``triton-shm``      the same through system shared memory (A)
``triton-encoded``  TritonModels.detect_encoded: the JPEG itself, decoded by the model (B)
``detect-grpc``     Detect: the service decodes, raw RGB over gRPC (before issue 18)
``detect-shm``      Detect: the service decodes, shared memory to Triton (A)
``detect-encoded``  Detect: the JPEG handed to the detector (B)
==================  =====================================================================

SpotOn uses B for a JPEG/PNG ``Detect`` without embeddings, and A for every frame it has as
pixels (video, raw ``Detect``, crops) when Triton is on this host.

It prints CPU milliseconds per request in the service and in Triton (its stubs included),
calls made one at a time, median of rounds: on a loaded machine that is the steady figure,
and on two cores, shared by the service and Triton, throughput is bounded by their sum.
Then requests/s and p50/p99 at concurrency 1, 2 and 4 (best round), with ``uptime``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import cv2
import grpc
import numpy as np
import psutil

from spoton.v1 import inference_pb2, inference_pb2_grpc
from spoton_inference.embedded.ports import pick_free_ports
from spoton_inference.embedded.triton import EmbeddedTriton
from spoton_inference.grpc_api.inference import InferenceServicer
from spoton_inference.pipeline.image_decode import decode_encoded, decode_raw
from spoton_inference.pipeline.triton_models import TritonModels, crop_people
from spoton_inference.services.detection import Detect
from spoton_inference.settings import REPO_ROOT, Settings

FRAME_VIDEO = REPO_ROOT.parent / "shared" / "real" / "tud-campus" / "cameras" / "c01" / "sub_video_01.mp4"
THRESHOLD = 0.3
CONCURRENCY = (1, 2, 4)
# CPU per request: rounds of calls one at a time; the median round is shown.
CPU_ROUNDS, CPU_CALLS = 5, 50
# Detect servers: how each reaches Triton.
SERVERS = ("grpc", "shm", "encoded")


def jpeg_frame() -> bytes:
    capture = cv2.VideoCapture(str(FRAME_VIDEO))
    ok, bgr = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"cannot read {FRAME_VIDEO}")
    return cv2.imencode(".jpg", cv2.resize(bgr, (640, 480)), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


async def serve(mode: str, triton_url: str, port: int) -> None:
    """One bare Detect server reaching Triton the ``mode`` way."""
    models = TritonModels(triton_url, "detector", "reid", shared_memory="on" if mode == "shm" else "off")
    if mode != "encoded":
        models._accepts_encoded = False  # decode here (before issue 18; and A), pixels to Triton
    settings = Settings()
    detect = Detect(models, decode_encoded, decode_raw, crop_people)
    servicer = InferenceServicer(  # Detect only: no StreamFrames sessions here
        detect, None, max_image_pixels=settings.max_image_pixels, detection_threshold=settings.detection_threshold
    )
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 32 << 20)])
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("serving", flush=True)
    await server.wait_for_termination()


def cpu_s(proc: psutil.Process, children: bool) -> float:
    """User+system CPU seconds of ``proc`` (and its children: Triton's stubs)."""
    total = 0.0
    for p in [proc, *(proc.children(recursive=True) if children else [])]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = p.cpu_times()
            total += times.user + times.system
    return total


async def cpu_per_call(call: Callable[[], Awaitable[object]], parts: dict[str, psutil.Process]) -> dict[str, float]:
    before = {k: cpu_s(p, k == "triton") for k, p in parts.items()}
    for _ in range(CPU_CALLS):
        await call()
    return {k: (cpu_s(p, k == "triton") - before[k]) * 1e3 / CPU_CALLS for k, p in parts.items()}


async def throughput(call: Callable[[], Awaitable[object]], concurrency: int, seconds: float) -> tuple[float, ...]:
    """Requests/s, p50 ms, p99 ms of ``concurrency`` callers for ``seconds``."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return len(ordered) / wall, statistics.median(ordered) * 1e3, ordered[int(0.99 * (len(ordered) - 1))] * 1e3


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


async def bench(seconds: float, rounds: int) -> None:
    jpeg = jpeg_frame()
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    with tempfile.TemporaryDirectory(prefix="spoton-detect-transport-") as data_dir:
        triton = EmbeddedTriton(Settings(data_dir=Path(data_dir)))
        await triton.start()
        servers: dict[str, subprocess.Popen[bytes]] = {}
        try:
            ports = dict(zip(SERVERS, pick_free_ports(len(SERVERS)), strict=True))
            for mode, port in ports.items():
                argv = [sys.executable, __file__, "--serve", mode, "--triton", triton.grpc_url, "--port", str(port)]
                servers[mode] = subprocess.Popen(argv, stdout=subprocess.PIPE)  # noqa: ASYNC220 (set-up)
                stdout = servers[mode].stdout
                assert stdout is not None and stdout.readline().strip() == b"serving"
            await measure(triton, servers, ports, jpeg, rgb, seconds, rounds)
        finally:
            for proc in servers.values():
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
            await triton.stop()


async def measure(
    triton: EmbeddedTriton,
    servers: dict[str, subprocess.Popen[bytes]],
    ports: dict[str, int],
    jpeg: bytes,
    rgb: np.ndarray,
    seconds: float,
    rounds: int,
) -> None:
    over_grpc = TritonModels(triton.grpc_url, "detector", "reid", shared_memory="off")
    shared = TritonModels(triton.grpc_url, "detector", "reid", shared_memory="on")
    channels = {m: grpc.aio.insecure_channel(f"127.0.0.1:{p}") for m, p in ports.items()}
    request = inference_pb2.DetectRequest(encoded=jpeg, score_threshold=THRESHOLD)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "triton-grpc": lambda: over_grpc.detect(rgb, THRESHOLD),
        "triton-shm": lambda: shared.detect(rgb, THRESHOLD),
        "triton-encoded": lambda: over_grpc.detect_encoded(jpeg, THRESHOLD),
    }
    stubs = {m: inference_pb2_grpc.InferenceServiceStub(c) for m, c in channels.items()}
    for mode, stub in stubs.items():
        calls[f"detect-{mode}"] = lambda stub=stub: stub.Detect(request)
    try:
        reference = await over_grpc.detect(rgb, THRESHOLD)
        for name in ("triton-shm", "triton-encoded"):  # the same detections every way
            np.testing.assert_array_equal((await calls[name]()).boxes, reference.boxes)  # type: ignore[attr-defined]
        for mode in SERVERS:
            reply = await calls[f"detect-{mode}"]()
            assert len(reply.detections) == len(reference), mode  # type: ignore[attr-defined]
        for call in calls.values():  # warm every path
            for _ in range(5):
                await call()
        print(f"JPEG {len(jpeg)} bytes, RGB {rgb.nbytes} bytes")
        print(f"uptime: {uptime()}", flush=True)
        triton_proc = psutil.Process(triton.pid)
        cpu: dict[str, list[dict[str, float]]] = {name: [] for name in calls}
        for _ in range(CPU_ROUNDS):
            for name, call in calls.items():
                parts = {"triton": triton_proc}
                if name.startswith("detect-"):
                    parts["service"] = psutil.Process(servers[name.removeprefix("detect-")].pid)
                cpu[name].append(await cpu_per_call(call, parts))
        print(f"\nCPU ms per request, one at a time (median of {CPU_ROUNDS} rounds of {CPU_CALLS}); uptime: {uptime()}")
        print(f"{'':16} {'service':>8} {'triton':>8} {'sum':>8}")
        for name, runs in cpu.items():
            service = statistics.median(r.get("service", 0.0) for r in runs)
            in_triton = statistics.median(r["triton"] for r in runs)
            print(f"{name:16} {service:8.1f} {in_triton:8.1f} {service + in_triton:8.1f}")
        results: dict[tuple[str, int], list[tuple[float, ...]]] = {}
        for _ in range(rounds):
            for concurrency in CONCURRENCY:
                for name, call in calls.items():
                    results.setdefault((name, concurrency), []).append(await throughput(call, concurrency, seconds))
        print(f"\nthroughput, best of {rounds} rounds of {seconds} s; uptime: {uptime()}")
        print(f"{'':16} {'c':>2} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'vs triton-grpc':>15}")
        for concurrency in CONCURRENCY:
            ceiling = max(r[0] for r in results[("triton-grpc", concurrency)])
            for name in calls:
                rps, p50, p99 = max(results[(name, concurrency)])
                print(f"{name:16} {concurrency:>2} {rps:7.1f} {p50:7.1f} {p99:7.1f} {rps / ceiling:14.2f}x")
    finally:
        await over_grpc.close()
        await shared.close()
        for channel in channels.values():
            await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one throughput round")
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds (best shown)")
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--triton", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.triton, args.port))
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        asyncio.run(bench(args.seconds, args.rounds))


if __name__ == "__main__":
    main()
