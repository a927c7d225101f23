"""Triton python-backend model ``detector``: one RGB frame in, person boxes out.

Contract (see ``model_repository/README.md``):

* ``IMAGE`` uint8 ``[H, W, 3]`` RGB, any size, or ``IMAGE_ENCODED`` bytes ``[1]``: one
  JPEG or PNG file, decoded here (a tenth of the bytes to carry, and the decode runs in
  the model's instances); exactly one of the two. Optional ``SCORE_THRESHOLD`` fp32 ``[1]``.
* ``BOXES`` fp32 ``[K, 4]`` = x1, y1, x2, y2 in pixels of the input frame,
  ``SCORES`` fp32 ``[K]``, best first; person class only.

Two ONNX formats, chosen by the ``format`` config parameter:

* ``ssd``: our SSDLite export (``python -m spoton_inference.modelbuild``): uint8
  ``[1, S, S, 3]`` squashed frame in; decoded normalised ``boxes`` (ymin, xmin,
  ymax, xmax) ``[1, N, 4]`` and person ``scores`` ``[1, N]`` out.
* ``yolo``: an ultralytics-style YOLOv8 export: letterboxed float ``[1, 3, S, S]``
  in 0..1; ``[1, 4 + nc, N]`` out (cx, cy, w, h in input pixels, then class
  scores); a box counts as a person when class 0 is its best class.

Optional tiling (``tiles`` = ``"CxR"``, e.g. ``"2x1"``): the frame is also cut into C x R
overlapping tiles (``tile_overlap``), each run through the network at its full input size, so
small, far-away people are seen at a higher scale; boxes cut by an inner tile edge are
dropped (a neighbour or the whole frame sees them whole) and the rest merged by NMS. It
multiplies the detector's cost by C x R + 1 (``bench/detector_tiling.py`` measures both).

Greedy NMS runs here for both. This file imports only numpy, onnxruntime, cv2
and (inside Triton) ``triton_python_backend_utils``, because the python-backend
stub may not see the project's own packages. The pure functions and
:class:`Detector` work without Triton, for tests and tools.

Example (outside Triton):
    >>> nms(np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32),
    ...     np.array([0.9, 0.8, 0.7], np.float32), iou_threshold=0.5, max_keep=10).tolist()
    [0, 2]
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # outside Triton: only the pure functions and Detector are used
    pb_utils = None

FORMATS = ("ssd", "yolo")
# Ultralytics pads letterboxes with grey 114; YOLO models are trained on that.
LETTERBOX_FILL = 114
# ONNX input types each format accepts, and the numpy dtype fed to them.
_INPUT_TYPES: dict[str, dict[str, type[np.generic]]] = {
    "ssd": {"tensor(uint8)": np.uint8},
    "yolo": {"tensor(float)": np.float32, "tensor(float16)": np.float16},
}


class InputError(ValueError):
    """A request the model cannot serve; reported to the client as INVALID_ARG."""


@dataclasses.dataclass(frozen=True, slots=True)
class DetectorParams:
    """The model's config parameters, validated.

    >>> DetectorParams.from_parameters({"format": "yolo", "input_size": "640"}).nms_iou
    0.6
    """

    onnx_file: str = "model.onnx"
    format: str = "ssd"
    input_size: int = 300
    score_threshold: float = 0.3
    nms_iou: float = 0.6
    max_detections: int = 100
    # "CxR" tiles on top of the whole frame; "1x1" is the whole frame alone.
    tiles: str = "1x1"
    # Each tile is this much wider/taller than an even share of the frame.
    tile_overlap: float = 0.25

    @property
    def tile_grid(self) -> tuple[int, int]:
        """``tiles`` as (columns, rows).

        >>> DetectorParams(tiles="2x1").tile_grid
        (2, 1)
        """
        cols, _, rows = self.tiles.lower().partition("x")
        return int(cols), int(rows)

    @classmethod
    def from_parameters(cls, parameters: dict[str, str]) -> DetectorParams:
        """Build from config ``parameters`` (string values); unknown keys are ignored."""
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        converters = {"str": str, "int": int, "float": float}
        try:
            params = cls(**{k: converters[fields[k]](v) for k, v in parameters.items() if k in fields})
        except ValueError as exc:
            raise ValueError(f"bad detector parameter: {exc}") from exc
        if params.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {params.format!r}")
        if (
            params.input_size < 32
            or not 0.0 < params.nms_iou <= 1.0
            or not 0.0 <= params.score_threshold <= 1.0
            or params.max_detections < 1
            or not 0.0 <= params.tile_overlap < 1.0
        ):
            raise ValueError(f"detector parameters out of range: {params}")
        try:
            cols, rows = params.tile_grid
        except ValueError:
            cols = rows = 0
        if not (1 <= cols <= 4 and 1 <= rows <= 4):
            raise ValueError(f"tiles must be 'CxR' with 1..4 columns and rows, got {params.tiles!r}")
        return params


def config_parameters(model_config: dict[str, Any]) -> dict[str, str]:
    """Flatten Triton's ``{"key": {"string_value": "v"}}`` parameters to ``{"key": "v"}``."""
    return {k: v["string_value"] for k, v in model_config.get("parameters", {}).items()}


def make_session(path: Path) -> ort.InferenceSession:
    """An onnxruntime CPU session on one thread.

    Triton runs two instances of the model on two cores, which beats one
    instance with a two-thread pool (and dynamic batching) on this workload.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def validate_frame(frame: np.ndarray) -> np.ndarray:
    """The frame as a contiguous uint8 ``[H, W, 3]`` array, or :class:`InputError`."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"IMAGE must be uint8 [H, W, 3] RGB, got {frame.dtype} {list(frame.shape)}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise InputError(f"IMAGE is empty: {list(frame.shape)}")
    return np.ascontiguousarray(frame)


def decode_image(value: np.ndarray) -> np.ndarray:
    """An ``IMAGE_ENCODED`` tensor (one JPEG or PNG file) as an RGB frame, or :class:`InputError`.

    OpenCV refuses images over its own pixel limit (``CV_IO_MAX_IMAGE_PIXELS``, 2^30).

    >>> ok, png = cv2.imencode(".png", np.full((2, 3, 3), (255, 0, 0), np.uint8))  # BGR blue
    >>> decode_image(np.array([png.tobytes()], dtype=object))[0, 0].tolist()
    [0, 0, 255]
    """
    if value.size != 1:
        raise InputError(f"IMAGE_ENCODED must hold one image, got shape {list(value.shape)}")
    data = value.reshape(-1)[0]
    if not isinstance(data, bytes) or not data:
        raise InputError("IMAGE_ENCODED is empty: send the bytes of one JPEG or PNG file")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"IMAGE_ENCODED ({len(data)} bytes) could not be decoded as JPEG or PNG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def parse_threshold(value: np.ndarray) -> float:
    """A ``SCORE_THRESHOLD`` tensor as a float in [0, 1], or :class:`InputError`."""
    if value.size != 1:
        raise InputError(f"SCORE_THRESHOLD must hold one value, got shape {list(value.shape)}")
    threshold = float(value.reshape(()))
    if not 0.0 <= threshold <= 1.0:  # also rejects NaN
        raise InputError(f"SCORE_THRESHOLD must be in [0, 1], got {threshold}")
    return threshold


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int) -> np.ndarray:
    """Greedy non-maximum suppression; indices of kept boxes, best first.

    ``boxes`` are ``[N, 4]`` corners (x1, y1, x2, y2), or any consistent
    corner order such as TF's (ymin, xmin, ymax, xmax): IoU does not care. A
    box is dropped when its IoU with a kept box is above ``iou_threshold``,
    as in TF's and OpenCV's NMS.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep: list[int] = []
    while order.size and len(keep) < max_keep:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = w * h
        union = areas[best] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode_ssd(
    boxes: np.ndarray, scores: np.ndarray, frame_hw: tuple[int, int], threshold: float, iou: float, max_detections: int
) -> tuple[np.ndarray, np.ndarray]:
    """SSD outputs ``[N, 4]`` normalised (ymin, xmin, ymax, xmax), ``[N]`` -> pixel x1y1x2y2.

    Same order as TF's postprocessor: NMS on the unclipped boxes, then clip to
    the frame and drop boxes left with no area.

    >>> b, s = decode_ssd(np.array([[0.1, 0.2, 0.5, 1.2]], np.float32),
    ...                   np.array([0.75], np.float32), (100, 200), 0.5, 0.6, 100)
    >>> b.tolist(), s.tolist()
    ([[40.0, 10.0, 200.0, 50.0]], [0.75])
    """
    candidates = np.flatnonzero(scores >= threshold)
    kept = candidates[nms(boxes[candidates], scores[candidates], iou, max_detections)]
    clipped = np.clip(boxes[kept], 0.0, 1.0)
    ymin, xmin, ymax, xmax = clipped.T
    nonempty = (ymax > ymin) & (xmax > xmin)
    height, width = frame_hw
    pixels = np.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=1)
    return pixels[nonempty].astype(np.float32), scores[kept][nonempty].astype(np.float32)


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping aspect ratio and pad to ``size x size`` (ultralytics' layout).

    Returns the image, the scale, and the (left, top) padding in pixels.

    >>> img, scale, pad = letterbox(np.zeros((50, 100, 3), np.uint8), 64)
    >>> img.shape, scale, pad
    ((64, 64, 3), 0.64, (0, 16))
    """
    height, width = frame.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = round(width * scale), round(height * scale)
    resized = (
        cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        if (new_w, new_h) != (width, height)
        else frame
    )
    # Ultralytics splits odd padding with round(d - 0.1) before and round(d + 0.1) after.
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    top, left = round(dh - 0.1), round(dw - 0.1)
    padded = cv2.copyMakeBorder(
        resized, top, size - new_h - top, left, size - new_w - left, cv2.BORDER_CONSTANT, value=(LETTERBOX_FILL,) * 3
    )
    return padded, scale, (left, top)


def decode_yolo(
    output: np.ndarray,
    scale: float,
    pad: tuple[float, float],
    frame_hw: tuple[int, int],
    threshold: float,
    iou: float,
    max_detections: int,
) -> tuple[np.ndarray, np.ndarray]:
    """YOLOv8 output ``[4 + nc, N]`` -> person boxes x1y1x2y2 in frame pixels.

    Like ultralytics' ``predict(classes=[0])``: a candidate is a person when
    class 0 is its best class, scored by that class.

    >>> out = np.array([[32.0], [32.0], [20.0], [10.0], [0.75], [0.125]], np.float32)
    >>> b, s = decode_yolo(out, 0.5, (0, 16), (96, 128), 0.25, 0.7, 100)
    >>> b.tolist(), s.tolist()
    ([[44.0, 22.0, 84.0, 42.0]], [0.75])
    """
    classes = output[4:]
    person = classes[0]
    candidates = np.flatnonzero((person >= threshold) & (classes.argmax(axis=0) == 0))
    cx, cy, w, h = output[:4, candidates]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kept = nms(boxes, person[candidates], iou, max_detections)
    left, top = pad
    height, width = frame_hw
    pixels = (boxes[kept] - np.array([left, top, left, top], np.float32)) / scale
    pixels[:, 0::2] = np.clip(pixels[:, 0::2], 0, width)
    pixels[:, 1::2] = np.clip(pixels[:, 1::2], 0, height)
    nonempty = (pixels[:, 2] > pixels[:, 0]) & (pixels[:, 3] > pixels[:, 1])
    return pixels[nonempty].astype(np.float32), person[candidates][kept][nonempty].astype(np.float32)


def tile_regions(height: int, width: int, cols: int, rows: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x1, y1, x2, y2) covering a frame, ``cols`` x ``rows``, row by row.

    >>> tile_regions(480, 640, 2, 1, 0.25)
    [(0, 0, 400, 480), (240, 0, 640, 480)]
    """
    tile_w = min(width, round(width / cols * (1 + overlap)))
    tile_h = min(height, round(height / rows * (1 + overlap)))
    xs = [0] if cols == 1 else [round(c * (width - tile_w) / (cols - 1)) for c in range(cols)]
    ys = [0] if rows == 1 else [round(r * (height - tile_h) / (rows - 1)) for r in range(rows)]
    return [(x, y, x + tile_w, y + tile_h) for y in ys for x in xs]


def whole_in_tile(
    boxes: np.ndarray, tile: tuple[int, int, int, int], frame_hw: tuple[int, int], margin: float = 2.0
) -> np.ndarray:
    """Mask of boxes (frame pixels) not cut by one of the tile's *inner* edges.

    A person cut by a tile edge is seen whole by a neighbouring tile or the whole frame;
    the cut box would survive NMS beside the whole one (their IoU is low) as a false positive.
    The frame's own edges cut nothing here.

    >>> whole_in_tile(np.array([[10, 0, 50, 90], [360, 0, 400, 90]], np.float32), (0, 0, 400, 480), (480, 640))
    array([ True, False])
    """
    x1, y1, x2, y2 = tile
    height, width = frame_hw
    keep = np.ones(len(boxes), bool)
    if x1 > 0:
        keep &= boxes[:, 0] > x1 + margin
    if y1 > 0:
        keep &= boxes[:, 1] > y1 + margin
    if x2 < width:
        keep &= boxes[:, 2] < x2 - margin
    if y2 < height:
        keep &= boxes[:, 3] < y2 - margin
    return keep


class Detector:
    """One ONNX detector session plus the pre/post-processing for its format."""

    def __init__(self, onnx_path: Path, params: DetectorParams) -> None:
        self.params = params
        self.session = make_session(onnx_path)
        model_input = self.session.get_inputs()[0]
        self._input_name = model_input.name
        self._dtype = _INPUT_TYPES[params.format].get(model_input.type)
        if self._dtype is None:
            raise ValueError(
                f"{onnx_path}: a {params.format} model needs an input of type "
                f"{' or '.join(_INPUT_TYPES[params.format])}, got {model_input.type}"
            )
        size = params.input_size
        expected = [1, size, size, 3] if params.format == "ssd" else [1, 3, size, size]
        # Symbolic (dynamic) dims are strings; only fixed ones must agree.
        if len(model_input.shape) != 4 or any(
            isinstance(d, int) and d != e for d, e in zip(model_input.shape, expected, strict=True)
        ):
            raise ValueError(
                f"{onnx_path}: input shape {model_input.shape} does not fit format={params.format} input_size={size}"
            )

    def detect(self, frame: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes ``[K, 4]`` (x1, y1, x2, y2 pixels) and scores ``[K]`` for one RGB frame."""
        frame = validate_frame(frame)
        cols, rows = self.params.tile_grid
        if cols * rows == 1:
            return self._detect_whole(frame, threshold)
        frame_hw = (frame.shape[0], frame.shape[1])
        whole_boxes, whole_scores = self._detect_whole(frame, threshold)
        all_boxes, all_scores = [whole_boxes], [whole_scores]
        for tile in tile_regions(*frame_hw, cols, rows, self.params.tile_overlap):
            x1, y1, x2, y2 = tile
            boxes, scores = self._detect_whole(np.ascontiguousarray(frame[y1:y2, x1:x2]), threshold)
            boxes = boxes + np.array([x1, y1, x1, y1], np.float32)
            keep = whole_in_tile(boxes, tile, frame_hw)
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
        boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        kept = nms(boxes, scores, self.params.nms_iou, self.params.max_detections)
        return boxes[kept], scores[kept]

    def _detect_whole(self, frame: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        size = p.input_size
        frame_hw = (frame.shape[0], frame.shape[1])
        if p.format == "ssd":
            # Squash without letterbox, as the TF model was trained and evaluated.
            resized = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
            boxes, scores = self.session.run(None, {self._input_name: resized[None]})
            return decode_ssd(boxes[0], scores[0], frame_hw, threshold, p.nms_iou, p.max_detections)
        image, scale, pad = letterbox(frame, size)
        tensor = (image.transpose(2, 0, 1)[None] / np.float32(255.0)).astype(self._dtype)
        output = self.session.run(None, {self._input_name: tensor})[0]
        return decode_yolo(output[0].astype(np.float32), scale, pad, frame_hw, threshold, p.nms_iou, p.max_detections)


def _request_frame(request: Any) -> np.ndarray:
    """The request's frame, from ``IMAGE`` or ``IMAGE_ENCODED`` (exactly one is given)."""
    image = pb_utils.get_input_tensor_by_name(request, "IMAGE")
    encoded = pb_utils.get_input_tensor_by_name(request, "IMAGE_ENCODED")
    if (image is None) == (encoded is None):
        raise InputError("send exactly one of IMAGE (uint8 [H, W, 3] RGB) and IMAGE_ENCODED (one JPEG or PNG file)")
    return image.as_numpy() if image is not None else decode_image(encoded.as_numpy())


def _error_response(message: str, invalid_arg: bool) -> Any:
    code = pb_utils.TritonError.INVALID_ARG if invalid_arg else pb_utils.TritonError.INTERNAL
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))


class TritonPythonModel:
    """Triton entry points; one instance per ``instance_group`` copy."""

    def initialize(self, args: dict[str, str]) -> None:
        params = DetectorParams.from_parameters(config_parameters(json.loads(args["model_config"])))
        onnx_path = Path(args["model_repository"]) / args["model_version"] / params.onnx_file
        self.params = params
        self.detector = Detector(onnx_path, params)
        # The first run allocates onnxruntime's buffers; pay for it before traffic.
        self.detector.detect(np.zeros((params.input_size, params.input_size, 3), np.uint8), 1.0)

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                frame = _request_frame(request)
                given = pb_utils.get_input_tensor_by_name(request, "SCORE_THRESHOLD")
                threshold = self.params.score_threshold if given is None else parse_threshold(given.as_numpy())
                boxes, scores = self.detector.detect(frame, threshold)
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[pb_utils.Tensor("BOXES", boxes), pb_utils.Tensor("SCORES", scores)]
                    )
                )
            except InputError as exc:
                responses.append(_error_response(str(exc), invalid_arg=True))
            except Exception as exc:  # one bad request must not fail the others
                responses.append(_error_response(f"detector failed: {exc}", invalid_arg=False))
        return responses
