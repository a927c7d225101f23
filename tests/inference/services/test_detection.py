"""The Detect use case over fake ports: which path an image takes, and the refusals."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.pipeline.image_decode import decode_encoded, decode_raw
from spoton_inference.services.detection import Detect

BOX = np.array([[1.0, 2.0, 9.0, 12.0]], np.float32)


@dataclasses.dataclass
class Found:
    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


@dataclasses.dataclass
class FakeDetector:
    encoded: bool = True
    calls: list[str] = dataclasses.field(default_factory=list)

    async def detect(self, frame_rgb: np.ndarray, score_threshold: float) -> Found:
        self.calls.append(f"detect {frame_rgb.shape[1]}x{frame_rgb.shape[0]}")
        return Found(BOX, np.array([0.9], np.float32))

    async def accepts_encoded(self) -> bool:
        return self.encoded

    async def detect_encoded(self, image: bytes, score_threshold: float) -> Found:
        self.calls.append("detect_encoded")
        return Found(BOX, np.array([0.8], np.float32))

    async def embed(self, crops: np.ndarray) -> np.ndarray:
        self.calls.append(f"embed {len(crops)}")
        return np.ones((len(crops), 4), np.float32)


def crop(frame_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return np.zeros((len(boxes), 8, 4, 3), np.uint8)


def png(width: int, height: int) -> bytes:
    return cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))[1].tobytes()


async def test_the_detector_decodes_the_file_unless_embeddings_need_the_pixels() -> None:
    detector = FakeDetector()
    detect = Detect(detector, decode_encoded, decode_raw, crop)
    plain = await detect.detect_encoded(png(32, 24), 10_000, 0.5, False)
    assert (plain.width, plain.height, plain.embeddings) == (32, 24, None)
    with_embeddings = await detect.detect_encoded(png(32, 24), 10_000, 0.5, True)
    assert with_embeddings.embeddings is not None and with_embeddings.embeddings.shape == (1, 4)
    assert detector.calls == ["detect_encoded", "detect 32x24", "embed 1"]


async def test_raw_pixels_are_decoded_here_and_detected() -> None:
    detector = FakeDetector(encoded=False)
    result = await Detect(detector, decode_encoded, decode_raw, crop).detect_raw(b"\0" * 18, 3, 2, 6, 0.5, False)
    assert (result.width, result.height) == (3, 2)
    assert detector.calls == ["detect 3x2"]


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
async def test_a_threshold_outside_0_1_is_refused(threshold: float) -> None:
    with pytest.raises(InvalidArgument, match="score_threshold"):
        await Detect(FakeDetector(), decode_encoded, decode_raw, crop).detect_encoded(png(4, 4), 100, threshold, False)


async def test_an_image_over_the_pixel_limit_is_refused_before_the_detector() -> None:
    detector = FakeDetector()
    with pytest.raises(InvalidArgument):
        await Detect(detector, decode_encoded, decode_raw, crop).detect_encoded(png(32, 24), 100, 0.5, False)
    with pytest.raises(InvalidArgument, match="empty"):
        await Detect(detector, decode_encoded, decode_raw, crop).detect_encoded(b"", 100, 0.5, False)
    assert detector.calls == []
