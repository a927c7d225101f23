"""Stateless detection of one image: decode, detect, optionally embed."""

from __future__ import annotations

import asyncio
import dataclasses

import cv2
import numpy as np

from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.image_header import announced_size, check_pixels
from spoton_inference.pipeline.triton_models import TritonModels, crop_people

# An Exif segment may rotate a JPEG on decode (orientation tag), so its header's width and
# height may not be the decoded frame's; it sits near the start of the file.
_EXIF_MARK = b"Exif\x00\x00"
_EXIF_SEARCH_BYTES = 64 * 1024


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


async def detect_encoded(
    models: TritonModels, data: bytes, max_pixels: int, score_threshold: float, with_embeddings: bool
) -> DetectionResult:
    """Detect in JPEG/PNG bytes.

    Without embeddings the detector decodes the file itself (``IMAGE_ENCODED``, where it
    declares it): ~50 KB travel instead of ~900 KB of 640x480 pixels, and the service does
    the least work on a request's path (bench/detect_transport.py: 2.0-2.7 ms CPU here
    against 5.0-5.7 decoding here and sending the pixels through shared memory, about the
    same in both together). Crops for embeddings need the pixels here, and so does a JPEG
    whose Exif data may rotate it (its header's size would not be the frame's)."""
    _check_threshold(score_threshold)
    if not data:
        raise InvalidArgument("image is empty: send JPEG or PNG bytes, or a raw BGR image")
    width, height = announced_size(data)
    check_pixels(width, height, max_pixels)
    if not with_embeddings and _EXIF_MARK not in data[:_EXIF_SEARCH_BYTES] and await models.accepts_encoded():
        det = await models.detect_encoded(data, score_threshold)
        return DetectionResult(det.boxes, det.scores, None, width, height)
    rgb = await asyncio.to_thread(decode_encoded, data, max_pixels)
    return await detect_image(models, rgb, score_threshold, with_embeddings)


async def detect_image(
    models: TritonModels, rgb: np.ndarray, score_threshold: float, with_embeddings: bool
) -> DetectionResult:
    _check_threshold(score_threshold)
    det = await models.detect(rgb, score_threshold)
    embeddings = await models.embed(crop_people(rgb, det.boxes)) if with_embeddings and len(det) else None
    return DetectionResult(det.boxes, det.scores, embeddings, rgb.shape[1], rgb.shape[0])


def _check_threshold(score_threshold: float) -> None:
    if not 0.0 <= score_threshold <= 1.0:
        raise InvalidArgument(f"score_threshold must be within 0..1, got {score_threshold}")
