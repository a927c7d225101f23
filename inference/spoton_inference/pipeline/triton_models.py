"""Clients for the two Triton models, over tritonclient's gRPC asyncio API.

The model contract is in ``model_repository/README.md``:
- detector: ``IMAGE`` uint8 [H,W,3] RGB, or ``IMAGE_ENCODED`` (one JPEG/PNG file, where the
  model declares it), + optional ``SCORE_THRESHOLD`` -> ``BOXES`` [N,4] x1,y1,x2,y2 pixels,
  ``SCORES`` [N];
- reid: ``CROPS`` uint8 [B,256,128,3] RGB -> ``EMBEDDINGS`` [B,D], L2-normalised.

Frames and crops travel through Triton's system shared memory when Triton is on this host
(SPOTON_TRITON_SHARED_MEMORY, :mod:`triton_shm`), else inside the gRPC request.

A call that finds Triton unreachable fails at once with :class:`Unavailable` (an RPC such as
Detect answers UNAVAILABLE). Tasks and jobs ride an outage out instead: :class:`OutageWait`
repeats the same request with capped back-off for up to SPOTON_TRITON_OUTAGE_WAIT_S, so a
task carries on from the frame it had reached, or fails with a reason that names Triton.
The channel reconnects within ``RECONNECT_MAX_MS`` of Triton coming back (gRPC's default
back-off grows to two minutes, which made a restarted Triton look down for 60-90 s).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import cv2
import numpy as np
import tritonclient.grpc.aio as triton
from tritonclient.utils import InferenceServerException

from spoton_inference.domain.errors import InvalidArgument, Unavailable
from spoton_inference.pipeline.triton_shm import ShmPool, ShmUnsupported, is_lost_region, wants_shared_memory

log = logging.getLogger(__name__)
T = TypeVar("T")

CROP_HEIGHT, CROP_WIDTH = 256, 128
# gRPC codes of a Triton that is down, restarting, frozen or still loading its models;
# anything else is about the input.
_UNAVAILABLE_CODES = ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED")
# The same said in the message: a model not ready, or not loaded yet after a restart; or a
# python-backend stub that died or stalled (after a freeze, say: INTERNAL "Stub process
# 'detector_0_0' is not healthy"); such a Triton has been seen to crash at a later request,
# and the embedded stack then restarts it.
_UNAVAILABLE_MARKERS = (
    "unavailable",
    "not ready",
    "failed to connect",
    "connection",
    "deadline",
    "unknown model",
    "not healthy",
)
# Channel reconnect back-off (gRPC defaults: 1 s growing to 120 s), so a Triton back after an
# outage is reached within about RECONNECT_MAX_MS.
RECONNECT_FIRST_MS, RECONNECT_MAX_MS = 250, 1000
# Longest a readiness probe waits on a frozen Triton.
READY_TIMEOUT_S = 2.0
# OutageWait's back-off between tries of one request.
RETRY_FIRST_S, RETRY_MAX_S = 0.25, 2.0
# Same as tritonclient's own limits: frames are big.
_MAX_MESSAGE_BYTES = 2**31 - 1


@dataclasses.dataclass(frozen=True, slots=True)
class Detections:
    boxes: np.ndarray  # (N, 4) float32, x1,y1,x2,y2 pixels
    scores: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return len(self.scores)


class Models(Protocol):
    """The two model calls the pipeline makes: :class:`TritonModels` or a pool of them
    (triton_pool.py), or :class:`OutageWait` over either."""

    async def detect(self, frame_rgb: np.ndarray, score_threshold: float) -> Detections: ...

    async def embed(self, crops: np.ndarray) -> np.ndarray: ...


class TritonModels:
    """One gRPC channel to Triton, shared by the detector and the embedder calls.

    ``shared_memory`` is SPOTON_TRITON_SHARED_MEMORY: ``auto`` (a loopback ``url``), ``on`` or
    ``off``. A Triton that cannot map this host's shared memory gets tensors over gRPC.
    """

    def __init__(
        self,
        url: str,
        detector_model: str,
        reid_model: str,
        timeout_s: float = 30.0,
        shared_memory: str = "auto",
    ) -> None:
        self.url = url
        self._client = triton.InferenceServerClient(
            url=url,
            channel_args=[
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.initial_reconnect_backoff_ms", RECONNECT_FIRST_MS),
                ("grpc.min_reconnect_backoff_ms", RECONNECT_FIRST_MS),
                ("grpc.max_reconnect_backoff_ms", RECONNECT_MAX_MS),
            ],
        )
        self.detector_model = detector_model
        self.reid_model = reid_model
        self._timeout_s = timeout_s
        self._shm = ShmPool(self._client) if wants_shared_memory(shared_memory, url) else None
        self._accepts_encoded: bool | None = None  # asked once, by accepts_encoded()

    @property
    def shared_memory(self) -> ShmPool | None:
        """The shared-memory pool in use; None when tensors travel over gRPC."""
        return self._shm

    async def close(self) -> None:
        if self._shm is not None:
            await self._shm.close()
        await self._client.close()

    async def ready(self) -> dict[str, bool]:
        """Server liveness and each model's readiness, for health reporting."""
        out = {"server": False, self.detector_model: False, self.reid_model: False}
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                out["server"] = await self._client.is_server_ready()
                for name in (self.detector_model, self.reid_model):
                    out[name] = await self._client.is_model_ready(name)
        except (InferenceServerException, TimeoutError):
            pass
        return out

    async def detect(self, frame_rgb: np.ndarray, score_threshold: float) -> Detections:
        """Person boxes in one RGB frame (any layout: a BGR->RGB view is copied once)."""
        result = await self._infer_pixels(
            self.detector_model, "IMAGE", frame_rgb, [_threshold(score_threshold)], ["BOXES", "SCORES"]
        )
        return self._detections(result)

    async def accepts_encoded(self) -> bool:
        """Whether the detector declares ``IMAGE_ENCODED`` (ours does; a model dropped in
        whole may not). Asked once."""
        if self._accepts_encoded is None:
            try:
                meta = await self._client.get_model_metadata(self.detector_model, as_json=True)
            except InferenceServerException as exc:
                raise self._failure(self.detector_model, exc) from exc
            self._accepts_encoded = any(i.get("name") == "IMAGE_ENCODED" for i in meta.get("inputs", []))
        return self._accepts_encoded

    async def detect_encoded(self, image: bytes, score_threshold: float) -> Detections:
        """Person boxes in one JPEG/PNG file, decoded by the detector (see :meth:`accepts_encoded`)."""
        encoded = triton.InferInput("IMAGE_ENCODED", [1], "BYTES")
        encoded.set_data_from_numpy(np.array([image], dtype=np.object_))
        result = await self._infer(self.detector_model, [encoded, _threshold(score_threshold)], ["BOXES", "SCORES"])
        return self._detections(result)

    async def embed(self, crops: np.ndarray) -> np.ndarray:
        """Embeddings for a batch of RGB crops already sized CROP_HEIGHT x CROP_WIDTH."""
        if len(crops) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        result = await self._infer_pixels(self.reid_model, "CROPS", crops, [], ["EMBEDDINGS"])
        vectors = self._output(result, self.reid_model, "EMBEDDINGS", (len(crops), -1))
        if vectors.shape[1] == 0:  # numpy reshapes no values to (n, 0) without complaint
            raise Unavailable(f"Triton model {self.reid_model!r} at {self.url} answered an empty EMBEDDINGS output")
        return vectors.astype(np.float32)

    def _detections(self, result: triton.InferResult) -> Detections:
        boxes = self._output(result, self.detector_model, "BOXES", (-1, 4)).astype(np.float32)
        scores = self._output(result, self.detector_model, "SCORES", (len(boxes),)).astype(np.float32)
        return Detections(boxes, scores)

    async def _infer_pixels(
        self, model: str, name: str, pixels: np.ndarray, others: list, outputs: list[str]
    ) -> triton.InferResult:
        """Infer with a uint8 tensor ``name`` in shared memory if in use, else in the request."""
        pixels = np.asarray(pixels, dtype=np.uint8)
        pool = self._shm
        if pool is not None:
            try:
                return await self._infer_shared(pool, model, name, pixels, others, outputs)
            except ShmUnsupported as exc:
                if self._shm is pool:  # the first of the requests that found out
                    log.warning("Triton at %s: %s; sending tensors over gRPC instead", self.url, exc)
                    self._shm = None
                    await pool.close()
        tensor = triton.InferInput(name, list(pixels.shape), "UINT8")
        tensor.set_data_from_numpy(np.ascontiguousarray(pixels))
        return await self._infer(model, [tensor, *others], outputs)

    async def _infer_shared(
        self, pool: ShmPool, model: str, name: str, pixels: np.ndarray, others: list, outputs: list[str]
    ) -> triton.InferResult:
        for attempt in range(2):
            try:
                async with pool.lease(pixels.nbytes) as region:
                    tensor = triton.InferInput(name, list(pixels.shape), "UINT8")
                    tensor.set_shared_memory(region.name, region.write(pixels))
                    return await self._request(model, [tensor, *others], outputs)
            except InferenceServerException as exc:
                if not is_lost_region(exc):
                    raise self._failure(model, exc) from exc
                # A restarted Triton has forgotten our regions: register them again, once; a
                # second loss in a row is a Triton still restarting (OutageWait tries again).
                await pool.forget()
                if attempt == 1:
                    raise Unavailable(f"Triton at {self.url} lost its shared-memory regions twice: {exc}") from exc
                log.info("Triton at %s lost its shared-memory regions (restarted?): registering again", self.url)
        raise AssertionError("unreachable")

    def _output(self, result: triton.InferResult, model: str, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Output ``name`` in the ``shape`` the model contract promises. A reply without it, or
        whose bytes do not fill that shape, comes from a backend that is failing (both seen after
        Triton was frozen and resumed), so Triton counts as unavailable."""
        try:
            array = result.as_numpy(name)
            if array is None:
                raise Unavailable(f"Triton model {model!r} at {self.url} answered without its {name} output")
            return array.reshape(shape)
        except ValueError as exc:  # raw bytes that do not fill the declared, or the promised, shape
            malformed = f"Triton model {model!r} at {self.url} answered a malformed {name} output"
            raise Unavailable(f"{malformed}: {exc}") from exc

    async def _infer(self, model: str, inputs: list, outputs: list[str]) -> triton.InferResult:
        try:
            return await self._request(model, inputs, outputs)
        except InferenceServerException as exc:
            raise self._failure(model, exc) from exc

    async def _request(self, model: str, inputs: list, outputs: list[str]) -> triton.InferResult:
        return await self._client.infer(
            model,
            inputs,
            outputs=[triton.InferRequestedOutput(o) for o in outputs],
            client_timeout=self._timeout_s,
        )

    def _failure(self, model: str, exc: InferenceServerException) -> Unavailable | InvalidArgument:
        text = str(exc)
        if exc.status() in _UNAVAILABLE_CODES or any(m in text.lower() for m in _UNAVAILABLE_MARKERS):
            return Unavailable(f"Triton model {model!r} at {self.url} is unavailable: {text}")
        return InvalidArgument(f"Triton model {model!r} rejected the input: {text}")


class OutageWait:
    """Triton calls that ride out an outage of up to ``bound_s`` (SPOTON_TRITON_OUTAGE_WAIT_S).

    Each request is tried again, unchanged, with capped back-off while Triton is unavailable,
    so the caller's frame is never skipped; past the bound the call raises :class:`Unavailable`
    naming Triton and the setting. Errors about the input are raised at once.
    ``on_wait(reason)`` is told when a wait starts, and ``on_wait("")`` when it is over.
    """

    def __init__(
        self,
        models: Models,
        bound_s: float,
        on_wait: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.models = models
        self.bound_s = bound_s
        self.on_wait = on_wait

    async def detect(self, frame_rgb: np.ndarray, score_threshold: float) -> Detections:
        return await self._call(lambda: self.models.detect(frame_rgb, score_threshold))

    async def embed(self, crops: np.ndarray) -> np.ndarray:
        return await self._call(lambda: self.models.embed(crops))

    async def _call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        delay = RETRY_FIRST_S
        while True:
            try:
                result = await attempt()
            except Unavailable as exc:
                now = loop.time()
                if deadline is None:
                    deadline = now + self.bound_s
                    log.warning("Triton unavailable, retrying for up to %.0f s: %s", self.bound_s, exc)
                    if self.on_wait is not None:
                        await self.on_wait(f"waiting for Triton (up to {self.bound_s:.0f} s)")
                if now >= deadline:
                    raise Unavailable(
                        f"Triton stayed unavailable for {self.bound_s:.0f} s (SPOTON_TRITON_OUTAGE_WAIT_S): {exc}. "
                        f"Start Triton (or fix SPOTON_TRITON_GRPC_URL), then start the task again"
                    ) from exc
                await asyncio.sleep(min(delay, deadline - now))
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if deadline is not None:
                log.info("Triton reachable again after %.1f s", loop.time() - deadline + self.bound_s)
                if self.on_wait is not None:
                    await self.on_wait("")
            return result


def _threshold(score_threshold: float) -> triton.InferInput:
    tensor = triton.InferInput("SCORE_THRESHOLD", [1], "FP32")
    tensor.set_data_from_numpy(np.array([score_threshold], dtype=np.float32))
    return tensor


def crop_people(frame_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Cut and resize person boxes to the embedder's input size; (N, 256, 128, 3) uint8."""
    h, w = frame_rgb.shape[:2]
    out = np.zeros((len(boxes), CROP_HEIGHT, CROP_WIDTH, 3), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes).reshape(-1, 4)):
        xa, ya = int(max(0, np.floor(x1))), int(max(0, np.floor(y1)))
        xb, yb = int(min(w, np.ceil(x2))), int(min(h, np.ceil(y2)))
        if xb - xa >= 2 and yb - ya >= 2:
            out[i] = cv2.resize(frame_rgb[ya:yb, xa:xb], (CROP_WIDTH, CROP_HEIGHT), interpolation=cv2.INTER_LINEAR)
    return out
