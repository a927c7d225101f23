"""Clients for the two Triton models, over tritonclient's gRPC asyncio API.

The model contract is in ``model_repository/README.md``:
- detector: ``IMAGE`` uint8 [H,W,3] RGB (+ optional ``SCORE_THRESHOLD``) -> ``BOXES`` [N,4]
  x1,y1,x2,y2 pixels, ``SCORES`` [N];
- reid: ``CROPS`` uint8 [B,256,128,3] RGB -> ``EMBEDDINGS`` [B,D], L2-normalised.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import tritonclient.grpc.aio as triton
from tritonclient.utils import InferenceServerException

from spoton_inference.core.errors import InvalidArgument, Unavailable

CROP_HEIGHT, CROP_WIDTH = 256, 128
# Triton answers "model is not ready" / connection errors with these; anything else is the input.
_UNAVAILABLE_MARKERS = ("unavailable", "not ready", "failed to connect", "connection", "deadline")


@dataclasses.dataclass(frozen=True, slots=True)
class Detections:
    boxes: np.ndarray  # (N, 4) float32, x1,y1,x2,y2 pixels
    scores: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return len(self.scores)


class TritonModels:
    """One gRPC channel to Triton, shared by the detector and the embedder calls."""

    def __init__(self, url: str, detector_model: str, reid_model: str, timeout_s: float = 30.0) -> None:
        self._client = triton.InferenceServerClient(url=url)
        self.detector_model = detector_model
        self.reid_model = reid_model
        self._timeout_s = timeout_s

    async def close(self) -> None:
        await self._client.close()

    async def ready(self) -> dict[str, bool]:
        """Server liveness and each model's readiness, for health reporting."""
        out = {"server": False, self.detector_model: False, self.reid_model: False}
        try:
            out["server"] = await self._client.is_server_ready()
            for name in (self.detector_model, self.reid_model):
                out[name] = await self._client.is_model_ready(name)
        except InferenceServerException:
            pass
        return out

    async def detect(self, frame_rgb: np.ndarray, score_threshold: float) -> Detections:
        """Person boxes in one RGB frame."""
        image = triton.InferInput("IMAGE", list(frame_rgb.shape), "UINT8")
        image.set_data_from_numpy(np.ascontiguousarray(frame_rgb, dtype=np.uint8))
        thr = triton.InferInput("SCORE_THRESHOLD", [1], "FP32")
        thr.set_data_from_numpy(np.array([score_threshold], dtype=np.float32))
        result = await self._infer(self.detector_model, [image, thr], ["BOXES", "SCORES"])
        boxes = result.as_numpy("BOXES").reshape(-1, 4).astype(np.float32)
        scores = result.as_numpy("SCORES").reshape(-1).astype(np.float32)
        return Detections(boxes, scores)

    async def embed(self, crops: np.ndarray) -> np.ndarray:
        """Embeddings for a batch of RGB crops already sized CROP_HEIGHT x CROP_WIDTH."""
        if len(crops) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        inp = triton.InferInput("CROPS", list(crops.shape), "UINT8")
        inp.set_data_from_numpy(np.ascontiguousarray(crops, dtype=np.uint8))
        result = await self._infer(self.reid_model, [inp], ["EMBEDDINGS"])
        return result.as_numpy("EMBEDDINGS").reshape(len(crops), -1).astype(np.float32)

    async def _infer(self, model: str, inputs: list, outputs: list[str]) -> triton.InferResult:
        try:
            return await self._client.infer(
                model,
                inputs,
                outputs=[triton.InferRequestedOutput(o) for o in outputs],
                client_timeout=self._timeout_s,
            )
        except InferenceServerException as exc:
            text = str(exc)
            if any(m in text.lower() for m in _UNAVAILABLE_MARKERS):
                raise Unavailable(f"Triton model {model!r} is unavailable: {text}") from exc
            raise InvalidArgument(f"Triton model {model!r} rejected the input: {text}") from exc


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
