"""The ceilings' own Triton calls: tritonclient's gRPC asyncio API on the same models and
inputs as the service's calls (detector: IMAGE + SCORE_THRESHOLD; embedder: CROPS), with
nothing of SpotOn in between.

With ``shared_memory`` (Triton on this host) the frames and crops go through Triton's system
shared memory, the fastest way in: a ceiling no transport of the service can beat.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import numpy as np
import tritonclient.grpc.aio as triton
import tritonclient.utils.shared_memory as shm

from serving_lib.stats import Summary, summarize

# Frames are large; tritonclient's own limit.
MAX_MESSAGE_BYTES = 2**31 - 1
# More than any call here keeps in flight (4 frames, or 3 cameras' detections and an embedder batch).
REGIONS = 8
# A 640x480 frame, or up to 85 crops of 256x128: a bigger input goes over gRPC.
REGION_BYTES = 8 << 20


class DirectTriton:
    def __init__(self, url: str, detector: str, embedder: str, shared_memory: bool) -> None:
        self._client = triton.InferenceServerClient(
            url=url,
            channel_args=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self._detector, self._embedder = detector, embedder
        self._shared_memory = shared_memory
        self._regions: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        self._handles: list[tuple[str, object]] = []

    @property
    def transport(self) -> str:
        return "shm" if self._shared_memory else "gRPC"

    async def open(self) -> None:
        for n in range(REGIONS if self._shared_memory else 0):
            name = f"servingbench-{os.getpid()}-{n}"
            handle = shm.create_shared_memory_region(name, f"/{name}", REGION_BYTES)
            self._handles.append((name, handle))
            await self._client.register_system_shared_memory(name, f"/{name}", REGION_BYTES)
            self._regions.put_nowait((name, handle))

    async def close(self) -> None:
        for name, handle in self._handles:
            with contextlib.suppress(Exception):  # Triton may be gone already
                await self._client.unregister_system_shared_memory(name)
            shm.destroy_shared_memory_region(handle)
        await self._client.close()

    async def detect(self, frame_rgb: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) and scores (N,)."""
        frame = np.ascontiguousarray(frame_rgb, np.uint8)
        threshold = triton.InferInput("SCORE_THRESHOLD", [1], "FP32")
        threshold.set_data_from_numpy(np.array([score_threshold], np.float32))
        outputs = [triton.InferRequestedOutput("BOXES"), triton.InferRequestedOutput("SCORES")]
        async with self._input("IMAGE", frame) as image:
            result = await self._client.infer(self._detector, [image, threshold], outputs=outputs)
        return result.as_numpy("BOXES").reshape(-1, 4), result.as_numpy("SCORES").reshape(-1)

    async def embed(self, crops: np.ndarray) -> np.ndarray:
        """Embeddings (B, D) of crops (B, 256, 128, 3)."""
        if len(crops) == 0:
            return np.zeros((0, 0), np.float32)
        async with self._input("CROPS", np.ascontiguousarray(crops, np.uint8)) as inp:
            output = triton.InferRequestedOutput("EMBEDDINGS")
            result = await self._client.infer(self._embedder, [inp], outputs=[output])
        return result.as_numpy("EMBEDDINGS").reshape(len(crops), -1)

    @contextlib.asynccontextmanager
    async def _input(self, name: str, array: np.ndarray) -> AsyncIterator[triton.InferInput]:
        """A UINT8 input holding ``array``: in a shared-memory region held for the call, or inline."""
        inp = triton.InferInput(name, list(array.shape), "UINT8")
        if not self._shared_memory or array.nbytes > REGION_BYTES:
            inp.set_data_from_numpy(array)
            yield inp
            return
        region, handle = await self._regions.get()
        try:
            shm.set_shared_memory_region(handle, [array])
            inp.set_shared_memory(region, array.nbytes)
            yield inp
        finally:
            self._regions.put_nowait((region, handle))


async def run_concurrent(calls: Sequence[Callable[[], Awaitable[object]]], concurrency: int) -> Summary:
    """Run ``calls`` in order with ``concurrency`` in flight; per-call latency and throughput."""
    latencies: list[float] = []
    pending = iter(calls)

    async def worker() -> None:
        for call in pending:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1e3)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summarize(latencies, time.perf_counter() - started)
