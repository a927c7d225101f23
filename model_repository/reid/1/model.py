"""Triton python-backend model ``reid``: person crops in, unit embeddings out.

Contract (see ``model_repository/README.md``):

* ``CROPS`` uint8 ``[B, 256, 128, 3]`` RGB, already resized by the client
  (``max_batch_size`` 64, so B is the batch dimension).
* ``EMBEDDINGS`` fp32 ``[B, D]``, every row L2-normalised (D = 1280 + 256 for ours:
  the CNN's features, then part-based colour histograms, see ``colour_histogram_weight``).

The ONNX file is read for what it expects, so other re-ID exports drop in:

* uint8 input (our export, ``python -m spoton_inference.modelbuild``): crops go
  in as they are; the model normalises itself.
* float input (e.g. an OSNet/torchreid export): crops are scaled to 0..1 and
  ImageNet mean/std-normalised here.
* layout NCHW when the input's dim 1 is 3 (and its last dim is not), else NHWC.

The output is always L2-normalised here too (a no-op for ours). This file
imports only numpy, onnxruntime and (inside Triton) ``triton_python_backend_utils``.

Example (outside Triton):
    >>> l2_normalise(np.array([[0.0, -2.0], [0.0, 0.0]], np.float32)).tolist()
    [[0.0, -1.0], [0.0, 0.0]]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # outside Triton: only the pure functions and Embedder are used
    pb_utils = None

CROP_HEIGHT = 256
CROP_WIDTH = 128
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
_ORT_DTYPES: dict[str, type[np.generic]] = {
    "tensor(uint8)": np.uint8,
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
}


class InputError(ValueError):
    """A request the model cannot serve; reported to the client as INVALID_ARG."""


def config_parameters(model_config: dict[str, Any]) -> dict[str, str]:
    """Flatten Triton's ``{"key": {"string_value": "v"}}`` parameters to ``{"key": "v"}``."""
    return {k: v["string_value"] for k, v in model_config.get("parameters", {}).items()}


def make_session(path: Path) -> ort.InferenceSession:
    """An onnxruntime CPU session on one thread (two Triton instances share two cores)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def validate_crops(crops: np.ndarray) -> np.ndarray:
    """The crops as contiguous uint8 ``[B, 256, 128, 3]``, or :class:`InputError`."""
    if crops.dtype != np.uint8 or crops.shape[1:] != (CROP_HEIGHT, CROP_WIDTH, 3):
        raise InputError(
            f"CROPS must be uint8 [B, {CROP_HEIGHT}, {CROP_WIDTH}, 3] RGB, got {crops.dtype} {list(crops.shape)}"
        )
    return np.ascontiguousarray(crops)


def prepare_crops(crops: np.ndarray, dtype: type[np.generic], nchw: bool) -> np.ndarray:
    """uint8 NHWC crops -> what the ONNX input takes (see the module docstring).

    >>> x = prepare_crops(np.full((1, 2, 2, 3), 255, np.uint8), np.float32, nchw=True)
    >>> x.shape, [round(float(v), 3) for v in x[0, :, 0, 0]]
    ((1, 3, 2, 2), [2.249, 2.429, 2.64])
    """
    if dtype != np.uint8:
        crops = (crops / np.float32(255.0) - IMAGENET_MEAN) / IMAGENET_STD
    if nchw:
        crops = crops.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(crops, dtype=dtype)


def colour_histograms(crops: np.ndarray, bins: tuple[int, int, int] = (8, 4, 4)) -> np.ndarray:
    """Part-based HSV colour histograms: ``[B, 256, 128, 3]`` uint8 RGB -> ``[B, 2 * prod(bins)]``.

    One histogram for the torso band (15-50 % of the crop's height) and one for the legs
    (50-90 %), each with the square root of its normalised counts (Hellinger), so that the
    dot product of two unit rows is their Bhattacharyya coefficient. The classic
    hand-crafted re-ID cue: it tells clothing colours apart where an ImageNet CNN's
    global features barely do. Cost: about 2.9 ms per crop on one CPU thread, against
    5.2 ms for the default CNN (8 crops, timed with ``time.perf_counter`` on the dev machine).

    >>> red = np.zeros((1, 256, 128, 3), np.uint8); red[..., 0] = 200
    >>> blue = np.zeros((1, 256, 128, 3), np.uint8); blue[..., 2] = 200
    >>> h = colour_histograms(np.concatenate([red, red, blue]))
    >>> h.shape, round(float(h[0] @ h[1]), 3), round(float(h[0] @ h[2]), 3)
    ((3, 256), 1.0, 0.0)
    """
    height = crops.shape[1]
    bands = [(int(top * height), int(bottom * height)) for top, bottom in ((0.15, 0.5), (0.5, 0.9))]
    # Only the rows the bands cover are converted: a quarter of the work saved.
    first = bands[0][0]
    rgb = crops[:, first : bands[-1][1]].astype(np.float32) / np.float32(255.0)
    v = rgb.max(axis=3)
    chroma = v - rgb.min(axis=3)
    s = np.where(v > 0, chroma / np.maximum(v, 1e-6), 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = np.where(chroma > 0, (hue / 6.0) % 1.0, 0.0)
    index = (
        np.minimum((hue * bins[0]).astype(np.int64), bins[0] - 1) * (bins[1] * bins[2])
        + np.minimum((s * bins[1]).astype(np.int64), bins[1] - 1) * bins[2]
        + np.minimum((v * bins[2]).astype(np.int64), bins[2] - 1)
    )
    size = bins[0] * bins[1] * bins[2]
    parts = []
    for top, bottom in bands:
        band = index[:, top - first : bottom - first].reshape(len(crops), -1)
        offsets = np.arange(len(crops))[:, None] * size
        counts = np.bincount((band + offsets).ravel(), minlength=len(crops) * size).reshape(len(crops), size)
        parts.append(np.sqrt(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)))
    return l2_normalise(np.concatenate(parts, axis=1).astype(np.float32))


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def with_colour(features: np.ndarray, crops: np.ndarray, weight: float) -> np.ndarray:
    """Unit CNN features and unit colour histograms, concatenated so that the cosine
    similarity of two rows is ``(1 - weight) * cnn + weight * colour``; still unit rows."""
    if weight <= 0.0:
        return features
    return np.concatenate(
        [np.sqrt(1.0 - weight) * features, np.sqrt(weight) * colour_histograms(crops)], axis=1
    ).astype(np.float32)


class Embedder:
    """One ONNX re-ID session plus the input adaptation its dtype/layout needs."""

    def __init__(self, onnx_path: Path, colour_histogram_weight: float = 0.0) -> None:
        if not 0.0 <= colour_histogram_weight < 1.0:
            raise ValueError(f"colour_histogram_weight must be in [0, 1), got {colour_histogram_weight}")
        self._colour_weight = colour_histogram_weight
        self.session = make_session(onnx_path)
        model_input = self.session.get_inputs()[0]
        self._input_name = model_input.name
        dtype = _ORT_DTYPES.get(model_input.type)
        shape = model_input.shape
        if dtype is None or len(shape) != 4:
            raise ValueError(f"{onnx_path}: need a 4-d uint8 or float input, got {model_input.type} {shape}")
        self._dtype = dtype
        self._nchw = shape[1] == 3 and shape[3] != 3
        height, width = (shape[2], shape[3]) if self._nchw else (shape[1], shape[2])
        # Symbolic (dynamic) dims are strings; fixed ones must be the crop size.
        if any(isinstance(d, int) and d != e for d, e in ((height, CROP_HEIGHT), (width, CROP_WIDTH))):
            raise ValueError(f"{onnx_path}: input {shape} does not take {CROP_HEIGHT}x{CROP_WIDTH} crops")
        # Also warms onnxruntime up and learns the embedding size.
        self.dim = self.embed(np.zeros((1, CROP_HEIGHT, CROP_WIDTH, 3), np.uint8)).shape[1]

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """``[B, 256, 128, 3]`` uint8 RGB crops -> ``[B, D]`` unit float32 embeddings."""
        crops = validate_crops(crops)
        if crops.shape[0] == 0:
            return np.zeros((0, self.dim), np.float32)
        batch = prepare_crops(crops, self._dtype, self._nchw)
        output = self.session.run(None, {self._input_name: batch})[0]
        features = l2_normalise(output.reshape(output.shape[0], -1).astype(np.float32))
        return with_colour(features, crops, self._colour_weight)


def _error_response(message: str, invalid_arg: bool) -> Any:
    code = pb_utils.TritonError.INVALID_ARG if invalid_arg else pb_utils.TritonError.INTERNAL
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))


class TritonPythonModel:
    """Triton entry points; one instance per ``instance_group`` copy."""

    def initialize(self, args: dict[str, str]) -> None:
        parameters = config_parameters(json.loads(args["model_config"]))
        onnx_file = parameters.get("onnx_file", "model.onnx")
        self.embedder = Embedder(
            Path(args["model_repository"]) / args["model_version"] / onnx_file,
            colour_histogram_weight=float(parameters.get("colour_histogram_weight", "0")),
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                crops = pb_utils.get_input_tensor_by_name(request, "CROPS").as_numpy()
                embeddings = self.embedder.embed(crops)
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("EMBEDDINGS", embeddings)]))
            except InputError as exc:
                responses.append(_error_response(str(exc), invalid_arg=True))
            except Exception as exc:  # one bad request must not fail the others
                responses.append(_error_response(f"reid failed: {exc}", invalid_arg=False))
        return responses
