"""A YOLOv8-style ONNX drops into the detector by changing config parameters only.

The stand-in YOLO is a tiny ONNX built here whose output is a known tensor
``[1, 4 + nc, N]`` (cx, cy, w, h in letterboxed input pixels, then class
scores). One column's person score is the mean of the input image, which pins
down the preprocessing too (letterbox with grey 114, RGB / 255, NCHW).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

SIZE = 64
# Columns: cx, cy, w, h (letterboxed pixels), person, other class.
FIXED = np.array(
    [
        [32, 24, 16, 8, 0.90, 0.10],  # person
        [33, 24, 16, 8, 0.80, 0.10],  # overlaps the first: suppressed by NMS
        [10, 40, 8, 8, 0.50, 0.60],  # best class is not person: dropped
        [50, 40, 8, 8, 0.20, 0.00],  # below the score threshold
        [60, 30, 12, 12, 0.70, 0.00],  # sticks out of the frame on the right: clipped
    ],
    np.float32,
).T[None]
MEAN_BOX = [16, 32, 8, 8]


def _yolo_onnx(path: Path) -> None:
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])
    output = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, FIXED.shape[2] + 1])
    inits = [
        numpy_helper.from_array(FIXED, "fixed"),
        numpy_helper.from_array(np.array(MEAN_BOX, np.float32).reshape(1, 4, 1), "mean_box"),
        numpy_helper.from_array(np.zeros((1, 1, 1), np.float32), "zero"),
        numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape111"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean4"], keepdims=1),
        helper.make_node("Reshape", ["mean4", "shape111"], ["mean"]),
        helper.make_node("Concat", ["mean_box", "mean", "zero"], ["mean_col"], axis=1),
        helper.make_node("Concat", ["fixed", "mean_col"], ["output0"], axis=2),
    ]
    graph = helper.make_graph(nodes, "fake_yolo", [images], [output], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def _to_frame(cx: float, cy: float, w: float, h: float) -> list[float]:
    """Letterboxed (cx, cy, w, h) -> clipped x1y1x2y2 in the 48x96 test frame."""
    scale, top = 2 / 3, 16
    x1, x2 = (cx - w / 2) / scale, (cx + w / 2) / scale
    y1, y2 = (cy - h / 2 - top) / scale, (cy + h / 2 - top) / scale
    return [max(x1, 0), max(y1, 0), min(x2, 96), min(y2, 48)]


@pytest.fixture
def yolo_dir(tmp_path: Path, built_repository: Path) -> Path:
    """The detector model dir with a YOLO ONNX and only config parameters changed."""
    model_dir = tmp_path / "detector"
    (model_dir / "1").mkdir(parents=True)
    _yolo_onnx(model_dir / "1" / "yolov8n.onnx")
    config = (built_repository / "detector" / "config.pbtxt").read_text()
    for key, old, new in (
        ("onnx_file", "model.onnx", "yolov8n.onnx"),
        ("format", "ssd", "yolo"),
        ("input_size", "300", str(SIZE)),
        ("nms_iou", "0.6", "0.7"),
    ):
        before = f'key: "{key}"\n  value: {{ string_value: "{old}" }}'
        assert before in config, key
        config = config.replace(before, f'key: "{key}"\n  value: {{ string_value: "{new}" }}')
    (model_dir / "config.pbtxt").write_text(config)
    shutil.copy(built_repository / "detector" / "1" / "model.py", model_dir / "1" / "model.py")
    return model_dir


def test_yolo_dropin_through_triton_entry_points(
    yolo_dir: Path,
    load_model: Callable[[str], Any],
    make_args: Callable[[Path], dict[str, str]],
    make_request: Callable[..., Any],
) -> None:
    model = load_model("detector")
    triton_model = model.TritonPythonModel()
    triton_model.initialize(make_args(yolo_dir))
    # A 48x96 frame letterboxes to 64x32 at scale 2/3, padded 16 rows top and bottom.
    frame = np.full((48, 96, 3), 200, np.uint8)
    (response,) = triton_model.execute([make_request(IMAGE=frame, SCORE_THRESHOLD=np.array([0.25], np.float32))])
    assert response.error is None
    boxes, scores = response.outputs["BOXES"], response.outputs["SCORES"]

    # Letterboxed mean: half the rows are the frame (200), half are padding (114).
    mean_score = (200 + 114) / 2 / 255
    expected = sorted(
        [
            (0.90, _to_frame(32, 24, 16, 8)),
            (0.70, _to_frame(60, 30, 12, 12)),
            (mean_score, _to_frame(*MEAN_BOX)),
        ],
        reverse=True,
    )
    np.testing.assert_allclose(scores, [s for s, _ in expected], atol=1e-4)
    np.testing.assert_allclose(boxes, [b for _, b in expected], atol=1e-3)
    assert boxes[1, 2] == 96, "the box sticking out on the right is clipped to the frame"


def test_yolo_input_must_be_float(tmp_path: Path, load_model: Callable[[str], Any], built_repository: Path) -> None:
    """Pointing format=yolo at our uint8 SSD export fails at load, naming the problem."""
    model = load_model("detector")
    params = model.DetectorParams(format="yolo", input_size=300)
    with pytest.raises(ValueError, match="yolo model needs an input of type"):
        model.Detector(built_repository / "detector" / "1" / "model.onnx", params)
