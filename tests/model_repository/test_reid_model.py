"""``model_repository/reid/1/model.py``: our uint8 export and a float (OSNet-style) drop-in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


@pytest.fixture
def model(load_model: Callable[[str], Any]) -> Any:
    return load_model("reid")


def _crops(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 256, 128, 3), dtype=np.uint8)


def test_our_export_gives_unit_1280d(model: Any, built_repository: Path) -> None:
    embedder = model.Embedder(built_repository / "reid" / "1" / "model.onnx")
    assert embedder.dim == 1280
    out = embedder.embed(_crops(3))
    assert out.shape == (3, 1280) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert embedder.embed(_crops(0)).shape == (0, 1280)


def test_triton_execute(
    model: Any, built_repository: Path, make_args: Callable[[Path], dict[str, str]], make_request: Callable[..., Any]
) -> None:
    triton_model = model.TritonPythonModel()
    triton_model.initialize(make_args(built_repository / "reid"))
    good, bad = triton_model.execute(
        [
            make_request(CROPS=_crops(2)),
            make_request(CROPS=np.zeros((2, 128, 128, 3), np.uint8)),
        ]
    )
    assert good.error is None and good.outputs["EMBEDDINGS"].shape == (2, 1280)
    assert bad.error is not None and bad.error.code == "INVALID_ARG"
    assert "CROPS must be uint8 [B, 256, 128, 3]" in bad.error.message()


def _float_nchw_onnx(path: Path) -> None:
    """An OSNet-shaped stand-in: float [B, 3, 256, 128] in, per-channel means out."""
    crops = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["B", 3, 256, 128])
    feats = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["B", 3])
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"]),
    ]
    graph = helper.make_graph(nodes, "fake_osnet", [crops], [feats])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)


def test_float_input_model_gets_imagenet_normalised_crops(model: Any, tmp_path: Path) -> None:
    _float_nchw_onnx(tmp_path / "osnet.onnx")
    embedder = model.Embedder(tmp_path / "osnet.onnx")
    rgb = np.array([[200, 30, 90], [0, 255, 128]], np.uint8)
    crops = np.broadcast_to(rgb[:, None, None, :], (2, 256, 128, 3))
    expected = (rgb / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    # float32 pooling over 32768 pixels accumulates ~1e-5 of rounding.
    np.testing.assert_allclose(embedder.embed(crops), expected, atol=2e-4)


def test_model_for_other_crop_size_is_rejected(model: Any, tmp_path: Path) -> None:
    crops = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["B", 3, 224, 224])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["B", 3, 224, 224])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["out"])], "g", [crops], [out])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="does not take 256x128 crops"):
        model.Embedder(tmp_path / "m.onnx")
