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
    # The shipped config appends the colour histograms (2 x 128 bins) to the CNN's 1280.
    assert good.error is None and good.outputs["EMBEDDINGS"].shape == (2, 1280 + 256)
    np.testing.assert_allclose(np.linalg.norm(good.outputs["EMBEDDINGS"], axis=1), 1.0, atol=1e-5)
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


def _people(shirt: tuple[int, int, int], trousers: tuple[int, int, int], count: int = 1, seed: int = 0) -> np.ndarray:
    """Crops of a figure on a noisy grey background: a shirt over the torso band, trousers below."""
    crops = np.random.default_rng(seed).integers(100, 140, (count, 256, 128, 3)).astype(np.uint8)
    crops[:, 50:125, 32:96] = shirt
    crops[:, 130:225, 40:88] = trousers
    return crops


def test_colour_histograms_tell_clothes_apart(model: Any) -> None:
    red_blue = model.colour_histograms(_people((210, 30, 30), (30, 30, 160), 2, seed=1))
    red_blue_again = model.colour_histograms(_people((230, 40, 35), (25, 30, 150), seed=2))
    green_blue = model.colour_histograms(_people((30, 180, 40), (30, 30, 160), seed=3))
    green_black = model.colour_histograms(_people((30, 180, 40), (20, 20, 20), seed=4))
    assert red_blue.shape == (2, 256)
    np.testing.assert_allclose(np.linalg.norm(red_blue, axis=1), 1.0, atol=1e-5)
    same, one_part, none = (float(red_blue[0] @ other[0]) for other in (red_blue_again, green_blue, green_black))
    # Shades of the same clothes match best; matching trousers count for something.
    assert same > 0.9 and same > one_part > none


def test_colour_weight_sets_the_share_of_the_similarity(model: Any, built_repository: Path) -> None:
    onnx_file = built_repository / "reid" / "1" / "model.onnx"
    plain, coloured = model.Embedder(onnx_file), model.Embedder(onnx_file, colour_histogram_weight=0.75)
    a, b = _people((200, 30, 30), (30, 30, 160), seed=1), _people((30, 180, 40), (20, 20, 20), seed=2)
    cnn = float(plain.embed(a)[0] @ plain.embed(b)[0])
    colour = float(model.colour_histograms(a)[0] @ model.colour_histograms(b)[0])
    combined = float(coloured.embed(a)[0] @ coloured.embed(b)[0])
    assert coloured.dim == plain.dim + 256
    assert combined == pytest.approx(0.25 * cnn + 0.75 * colour, abs=1e-5)
    with pytest.raises(ValueError, match="colour_histogram_weight"):
        model.Embedder(onnx_file, colour_histogram_weight=1.0)
