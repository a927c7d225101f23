"""The converted SSDLite detector reproduces the TensorFlow graph's detections.

Reference: the original frozen graph run in TensorFlow on the same photos,
squashed to 300x300 with ``cv2.resize`` (no letterbox), RGB. Boxes are
normalised (ymin, xmin, ymax, xmax).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest

TF_REFERENCE = {
    "bus.jpg": [
        (0.99998, (0.3801, 0.0546, 0.8487, 0.2706)),
        (0.99717, (0.3679, 0.2618, 0.7981, 0.4400)),
    ],
    "zidane.jpg": [
        (0.97226, (0.3050, 0.1238, 0.9917, 0.5378)),
        (0.93998, (0.0591, 0.5468, 0.9911, 0.8812)),
    ],
}
SCORE_TOL = 1e-3
BOX_TOL = 2e-3


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _assert_matches_reference(image: str, scores: np.ndarray, yxyx: np.ndarray) -> None:
    reference = TF_REFERENCE[image]
    assert len(scores) >= len(reference), f"{image}: only {len(scores)} detections"
    for (ref_score, ref_box), score, box in zip(reference, scores, yxyx, strict=False):
        assert abs(score - ref_score) <= SCORE_TOL, f"{image}: score {score} vs TF {ref_score}"
        np.testing.assert_allclose(box, ref_box, atol=BOX_TOL, err_msg=f"{image}: box vs TF")


@pytest.mark.parametrize("image", sorted(TF_REFERENCE))
def test_onnx_outputs_match_tensorflow(
    image: str, test_images: dict[str, Path], built_repository: Path, load_model: Callable[[str], Any]
) -> None:
    """Raw ONNX on the 300x300 input, then the serving NMS, against TF's detections."""
    model = load_model("detector")
    session = model.make_session(built_repository / "detector" / "1" / "model.onnx")
    frame = cv2.resize(_rgb(test_images[image]), (300, 300))
    boxes, scores = session.run(None, {"image": frame[None]})
    assert boxes.shape == (1, 1917, 4) and scores.shape == (1, 1917)
    # A 1x1 "frame" keeps the decoded boxes normalised (as x1, y1, x2, y2).
    xyxy, kept = model.decode_ssd(boxes[0], scores[0], (1, 1), 0.5, 0.6, 100)
    _assert_matches_reference(image, kept, xyxy[:, [1, 0, 3, 2]])


@pytest.mark.parametrize("image", sorted(TF_REFERENCE))
def test_detector_on_full_frames_matches_tensorflow(
    image: str, test_images: dict[str, Path], built_repository: Path, load_model: Callable[[str], Any]
) -> None:
    """The whole serving path on the original frame, boxes back in its pixels."""
    model = load_model("detector")
    detector = model.Detector(built_repository / "detector" / "1" / "model.onnx", model.DetectorParams())
    frame = _rgb(test_images[image])
    height, width = frame.shape[:2]
    boxes, scores = detector.detect(frame, 0.5)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert np.all(np.diff(scores) <= 0), "scores must come best first"
    normalised = boxes / np.array([width, height, width, height], np.float32)
    _assert_matches_reference(image, scores, normalised[:, [1, 0, 3, 2]])


def test_config_nms_iou_is_the_graphs(built_repository: Path, read_config: Callable[[Path], Any]) -> None:
    model = onnx.load(built_repository / "detector" / "1" / "model.onnx")
    metadata = {p.key: p.value for p in model.metadata_props}
    config = read_config(built_repository / "detector" / "config.pbtxt")
    assert float(config.parameters["nms_iou"].string_value) == float(metadata["nms_iou"]) == 0.6
