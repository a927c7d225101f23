"""Stateless detection of one image: decode, detect, optionally embed."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from spoton_inference.core.errors import InvalidArgument
from spoton_inference.core.image_header import announced_size, check_pixels
from spoton_inference.pipeline.triton_models import TritonModels, crop_people


@dataclasses.dataclass(frozen=True, slots=True)
class DetectionResult:
    boxes: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray | None
    width: int
    height: int


def decode_encoded(data: bytes, max_pixels: int) -> np.ndarray:
    """JPEG/PNG bytes to an RGB array; InvalidArgument when they are not an image, or when
    the header announces more than ``max_pixels`` (checked before decoding: bombs)."""
    if not data:
        raise InvalidArgument("image is empty: send JPEG or PNG bytes, or a raw BGR image")
    check_pixels(*announced_size(data), max_pixels)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InvalidArgument(f"image ({len(data)} bytes) could not be decoded as JPEG or PNG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_raw(data: bytes, width: int, height: int, max_pixels: int) -> np.ndarray:
    """Row-major BGR bytes of width x height to RGB (a view, no copy)."""
    check_pixels(width, height, max_pixels)
    if len(data) != width * height * 3:
        raise InvalidArgument(
            f"raw image of {width}x{height} has {len(data)} bytes, expected width*height*3 = {width * height * 3}"
        )
    return np.frombuffer(data, np.uint8).reshape(height, width, 3)[:, :, ::-1]


async def detect_image(
    models: TritonModels, rgb: np.ndarray, score_threshold: float, with_embeddings: bool
) -> DetectionResult:
    if not 0.0 <= score_threshold <= 1.0:
        raise InvalidArgument(f"score_threshold must be within 0..1, got {score_threshold}")
    det = await models.detect(rgb, score_threshold)
    embeddings = await models.embed(crop_people(rgb, det.boxes)) if with_embeddings and len(det) else None
    return DetectionResult(det.boxes, det.scores, embeddings, rgb.shape[1], rgb.shape[0])
