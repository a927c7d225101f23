"""The Detect use case: one image in, person boxes (and optionally embeddings) out.

Stateless. The detector (Triton's models), the image decoders and the person cropper are
ports given by the composition root (app.py), so this module knows neither Triton nor OpenCV.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Protocol

import numpy as np

from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.image_header import announced_size, check_pixels

# An Exif segment may rotate a JPEG on decode (orientation tag), so its header's width and
# height may not be the decoded frame's; it sits near the start of the file.
_EXIF_MARK = b"Exif\x00\x00"
_EXIF_SEARCH_BYTES = 64 * 1024

# JPEG/PNG bytes, max pixels -> RGB (pipeline/image_decode.py: decode_encoded).
DecodeEncoded = Callable[[bytes, int], np.ndarray]
# BGR bytes, width, height, max pixels -> RGB (pipeline/image_decode.py: decode_raw).
DecodeRaw = Callable[[bytes, int, int, int], np.ndarray]
# RGB frame, (N, 4) boxes -> the embedder's (N, H, W, 3) crops (pipeline/triton_models.py: crop_people).
CropPeople = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Found(Protocol):
    """What the detector found in one image."""

    @property
    def boxes(self) -> np.ndarray: ...  # (N, 4) float32, x1,y1,x2,y2 pixels

    @property
    def scores(self) -> np.ndarray: ...  # (N,) float32

    def __len__(self) -> int: ...


class Detector(Protocol):
    """The model calls Detect makes (pipeline/triton_models.py: TritonModels)."""

    async def detect(self, frame_rgb: np.ndarray, score_threshold: float) -> Found: ...

    async def accepts_encoded(self) -> bool: ...

    async def detect_encoded(self, image: bytes, score_threshold: float) -> Found: ...

    async def embed(self, crops: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True, slots=True)
class DetectionResult:
    boxes: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray | None
    width: int
    height: int


@dataclasses.dataclass(frozen=True, slots=True)
class Detect:
    """Detection of one image, encoded (JPEG/PNG) or raw (BGR pixels)."""

    detector: Detector
    decode_encoded: DecodeEncoded
    decode_raw: DecodeRaw
    crop_people: CropPeople

    async def detect_encoded(
        self, data: bytes, max_pixels: int, score_threshold: float, with_embeddings: bool
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
        if (
            not with_embeddings
            and _EXIF_MARK not in data[:_EXIF_SEARCH_BYTES]
            and await self.detector.accepts_encoded()
        ):
            det = await self.detector.detect_encoded(data, score_threshold)
            return DetectionResult(det.boxes, det.scores, None, width, height)
        rgb = await asyncio.to_thread(self.decode_encoded, data, max_pixels)
        return await self.detect_image(rgb, score_threshold, with_embeddings)

    async def detect_raw(
        self, data: bytes, width: int, height: int, max_pixels: int, score_threshold: float, with_embeddings: bool
    ) -> DetectionResult:
        """Detect in row-major BGR pixels of ``width`` x ``height`` (decoded as a view, no copy)."""
        rgb = self.decode_raw(data, width, height, max_pixels)
        return await self.detect_image(rgb, score_threshold, with_embeddings)

    async def detect_image(self, rgb: np.ndarray, score_threshold: float, with_embeddings: bool) -> DetectionResult:
        _check_threshold(score_threshold)
        det = await self.detector.detect(rgb, score_threshold)
        embeddings = (
            await self.detector.embed(self.crop_people(rgb, det.boxes)) if with_embeddings and len(det) else None
        )
        return DetectionResult(det.boxes, det.scores, embeddings, rgb.shape[1], rgb.shape[0])


def _check_threshold(score_threshold: float) -> None:
    if not 0.0 <= score_threshold <= 1.0:
        raise InvalidArgument(f"score_threshold must be within 0..1, got {score_threshold}")
