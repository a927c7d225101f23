"""``model_repository/detector/1/model.py``: parameters, NMS, and the Triton entry points."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest


@pytest.fixture
def model(load_model: Callable[[str], Any]) -> Any:
    return load_model("detector")


def test_params_from_config(model: Any, built_repository: Path, make_args: Callable[[Path], dict[str, str]]) -> None:
    config = json.loads(make_args(built_repository / "detector")["model_config"])
    params = model.DetectorParams.from_parameters(model.config_parameters(config))
    assert params == model.DetectorParams(
        onnx_file="model.onnx", format="ssd", input_size=300, score_threshold=0.3, nms_iou=0.6, max_detections=100
    )


@pytest.mark.parametrize(
    "parameters",
    [
        {"format": "rcnn"},
        {"input_size": "big"},
        {"nms_iou": "0"},
        {"score_threshold": "1.5"},
        {"max_detections": "0"},
        {"tiles": "0x1"},
        {"tiles": "5x1"},
        {"tiles": "2"},
        {"tiles": "twoxone"},
        {"tile_overlap": "1.0"},
    ],
)
def test_bad_params_are_rejected(model: Any, parameters: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        model.DetectorParams.from_parameters(parameters)


def test_unknown_params_are_ignored(model: Any) -> None:
    # The embedded stack appends EXECUTION_ENV_PATH to every model's config.
    params = model.DetectorParams.from_parameters({"EXECUTION_ENV_PATH": "/venv"})
    assert params == model.DetectorParams()


def test_nms_keeps_best_of_overlaps_and_caps(model: Any) -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [0, 0, 10, 5], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.5, 0.9, 0.8, 0.7], np.float32)
    # IoU([0,0,10,9], [0,0,10,10]) = 0.9 and with [0,0,10,5] = 5/9: only the first is suppressed.
    assert model.nms(boxes, scores, 0.6, 100).tolist() == [1, 2, 3]
    assert model.nms(boxes, scores, 0.5, 100).tolist() == [1, 3]
    assert model.nms(boxes, scores, 0.6, 2).tolist() == [1, 2]
    assert model.nms(boxes[:0], scores[:0], 0.6, 100).tolist() == []


def test_ssd_decode_clips_and_drops_empty_boxes(model: Any) -> None:
    boxes = np.array([[-0.2, 0.1, 0.5, 0.4], [1.1, 0.0, 1.5, 0.5], [0.6, 0.6, 0.9, 0.9]], np.float32)
    scores = np.array([0.9, 0.8, 0.2], np.float32)
    pixels, kept = model.decode_ssd(boxes, scores, (200, 100), 0.3, 0.6, 100)
    # The second box lies wholly below the frame: zero area after clipping.
    np.testing.assert_allclose(pixels, [[10, 0, 40, 100]], atol=1e-4)
    np.testing.assert_allclose(kept, [0.9])


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((0, 10, 3), np.uint8),
    ],
)
def test_bad_frames_are_input_errors(model: Any, frame: np.ndarray) -> None:
    with pytest.raises(model.InputError):
        model.validate_frame(frame)


@pytest.mark.parametrize(
    "value", [np.array([1.5], np.float32), np.array([np.nan], np.float32), np.array([0.1, 0.2], np.float32)]
)
def test_bad_thresholds_are_input_errors(model: Any, value: np.ndarray) -> None:
    with pytest.raises(model.InputError):
        model.parse_threshold(value)


def test_triton_execute(
    model: Any, built_repository: Path, make_args: Callable[[Path], dict[str, str]], make_request: Callable[..., Any]
) -> None:
    triton_model = model.TritonPythonModel()
    triton_model.initialize(make_args(built_repository / "detector"))
    frame = np.zeros((120, 160, 3), np.uint8)
    requests = [
        make_request(IMAGE=frame),
        make_request(IMAGE=frame, SCORE_THRESHOLD=np.array([0.0], np.float32)),
        make_request(IMAGE=np.zeros((0, 5, 3), np.uint8)),
        make_request(IMAGE=frame, SCORE_THRESHOLD=np.array([2.0], np.float32)),
    ]
    plain, everything, empty, bad_threshold = triton_model.execute(requests)

    assert plain.error is None
    assert plain.outputs["BOXES"].shape == (0, 4) and plain.outputs["SCORES"].shape == (0,)
    # Threshold 0 keeps every post-NMS candidate, up to max_detections.
    assert everything.error is None
    assert 0 < len(everything.outputs["SCORES"]) <= 100
    boxes = everything.outputs["BOXES"]
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4
    assert np.all((boxes >= 0) & (boxes <= [160, 120, 160, 120]))
    assert np.all(boxes[:, 2:] > boxes[:, :2])
    for response, text in ((empty, "IMAGE is empty"), (bad_threshold, "SCORE_THRESHOLD")):
        assert response.error is not None and response.error.code == "INVALID_ARG"
        assert text in response.error.message()


def test_missing_onnx_fails_initialize_clearly(
    model: Any, tmp_path: Path, built_repository: Path, make_args: Callable[[Path], dict[str, str]]
) -> None:
    model_dir = tmp_path / "detector"
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "config.pbtxt").write_text((built_repository / "detector" / "config.pbtxt").read_text())
    with pytest.raises(Exception, match=r"model\.onnx"):
        model.TritonPythonModel().initialize(make_args(model_dir))


@pytest.mark.parametrize(("height", "width", "cols", "rows"), [(480, 640, 2, 1), (480, 640, 2, 2), (1080, 1920, 3, 2)])
def test_tiles_cover_the_frame_and_overlap(model: Any, height: int, width: int, cols: int, rows: int) -> None:
    tiles = model.tile_regions(height, width, cols, rows, 0.25)
    assert len(tiles) == cols * rows
    covered = np.zeros((height, width), np.int32)
    for x1, y1, x2, y2 in tiles:
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        covered[y1:y2, x1:x2] += 1
    assert covered.min() >= 1
    # Neighbours share a band, so a person on a seam is whole in at least one tile.
    assert covered[:, width // 2].min() >= (2 if cols % 2 == 0 else 1)


def test_tiling_finds_small_people_the_whole_frame_misses(
    model: Any, test_images: dict[str, Path], built_repository: Path
) -> None:
    """Two copies of the bus photo, small, on a wide frame: the squashed whole frame loses
    people that the tiles, each seen at the network's full input size, find; nothing found on
    the whole frame is lost, and a person on two tiles is reported once."""
    import cv2

    photo = cv2.cvtColor(cv2.imread(str(test_images["bus.jpg"])), cv2.COLOR_BGR2RGB)
    small = cv2.resize(photo, (round(photo.shape[1] * 340 / photo.shape[0]), 340))
    frame = np.full((540, 1280, 3), 114, np.uint8)
    frame[100:440, 60 : 60 + small.shape[1]] = small
    frame[100:440, 1220 - small.shape[1] : 1220] = small
    onnx = built_repository / "detector" / "1" / "model.onnx"
    whole, _ = model.Detector(onnx, model.DetectorParams()).detect(frame, 0.5)
    tiled, scores = model.Detector(onnx, model.DetectorParams(tiles="2x1")).detect(frame, 0.5)

    assert len(tiled) > len(whole)
    assert np.all(np.diff(scores) <= 0)
    for box in whole:
        assert _iou(box[None], tiled).max() >= 0.5
    for i, box in enumerate(tiled):
        assert np.delete(_iou(box[None], tiled), i).max(initial=0.0) <= 0.6


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one x1,y1,x2,y2 box (a[0]) with each of ``b``."""
    x1, y1 = np.maximum(a[0, 0], b[:, 0]), np.maximum(a[0, 1], b[:, 1])
    x2, y2 = np.minimum(a[0, 2], b[:, 2]), np.minimum(a[0, 3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (_area(a[0]) + _area(b) - inter)


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def test_encoded_image_gives_the_detections_of_its_pixels(
    model: Any,
    built_repository: Path,
    make_args: Callable[[Path], dict[str, str]],
    make_request: Callable[..., Any],
    test_images: dict[str, Path],
) -> None:
    """IMAGE_ENCODED (the JPEG file itself) is decoded in the model: same boxes as IMAGE."""
    triton_model = model.TritonPythonModel()
    triton_model.initialize(make_args(built_repository / "detector"))
    jpeg = test_images["zidane.jpg"].read_bytes()
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    pixels, encoded = triton_model.execute(
        [make_request(IMAGE=rgb), make_request(IMAGE_ENCODED=np.array([jpeg], dtype=object))]
    )
    assert pixels.error is None and encoded.error is None
    assert len(encoded.outputs["SCORES"]) >= 2  # two people in the photo
    np.testing.assert_array_equal(encoded.outputs["BOXES"], pixels.outputs["BOXES"])
    np.testing.assert_array_equal(encoded.outputs["SCORES"], pixels.outputs["SCORES"])


def test_encoded_image_errors_name_the_input(
    model: Any, built_repository: Path, make_args: Callable[[Path], dict[str, str]], make_request: Callable[..., Any]
) -> None:
    triton_model = model.TritonPythonModel()
    triton_model.initialize(make_args(built_repository / "detector"))
    frame = np.zeros((8, 8, 3), np.uint8)
    png = cv2.imencode(".png", frame)[1].tobytes()
    cases = {
        "not an image": (make_request(IMAGE_ENCODED=np.array([b"not an image"], dtype=object)), "could not be decoded"),
        "empty": (make_request(IMAGE_ENCODED=np.array([b""], dtype=object)), "IMAGE_ENCODED is empty"),
        "two files": (make_request(IMAGE_ENCODED=np.array([png, png], dtype=object)), "one image"),
        "both inputs": (
            make_request(IMAGE=frame, IMAGE_ENCODED=np.array([png], dtype=object)),
            "exactly one of IMAGE",
        ),
        "neither": (make_request(SCORE_THRESHOLD=np.array([0.5], np.float32)), "exactly one of IMAGE"),
    }
    responses = triton_model.execute([request for request, _ in cases.values()])
    for (case, (_, text)), response in zip(cases.items(), responses, strict=True):
        assert response.error is not None and response.error.code == "INVALID_ARG", case
        assert text in response.error.message(), case
