"""The SSDLite conversion: anchors, ONNX interface, determinism, the CLI."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from spoton_inference.modelbuild.__main__ import main
from spoton_inference.modelbuild.ssdlite import anchors_center_size, build_detector_model, default_graph_path
from spoton_inference.modelbuild.tfeval import ConstantFolder
from spoton_inference.modelbuild.tfgraph import Node


def _standard_ssdlite_anchors() -> np.ndarray:
    """The TF OD API ``ssd_anchor_generator`` for the stock ssdlite_mobilenet_v2 config:
    6 layers, scales 0.2..0.95, aspect ratios 1, 2, 0.5, 3, 0.3333 (written so in the
    pipeline config, not 1/3) plus an interpolated scale, three boxes in the lowest
    layer; corners (ymin, xmin, ymax, xmax)."""
    grids = [19, 10, 5, 3, 2, 1]
    scales = [0.2 + (0.95 - 0.2) * i / 5 for i in range(6)] + [1.0]
    anchors = []
    for layer, grid in enumerate(grids):
        scale, next_scale = scales[layer], scales[layer + 1]
        if layer == 0:
            specs = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
        else:
            specs = [(scale, r) for r in (1.0, 2.0, 0.5, 3.0, 0.3333)]
            specs.append((math.sqrt(scale * next_scale), 1.0))
        for y in range(grid):
            for x in range(grid):
                cy, cx = (y + 0.5) / grid, (x + 0.5) / grid
                for s, ratio in specs:
                    h, w = s / math.sqrt(ratio), s * math.sqrt(ratio)
                    anchors.append([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2])
    return np.array(anchors)


def test_folded_anchors_are_the_standard_ssdlite_ones(ssd_graph: dict[str, Node]) -> None:
    folded = ConstantFolder(ssd_graph).value("Concatenate/concat")
    assert folded.shape == (1917, 4)
    np.testing.assert_allclose(folded, _standard_ssdlite_anchors(), atol=1e-6)


def test_anchor_centers_and_sizes(ssd_graph: dict[str, Node]) -> None:
    centers, sizes = anchors_center_size(ssd_graph)
    # First anchor: 0.1 x 0.1 box in the top-left cell of the 19x19 grid.
    np.testing.assert_allclose(centers[0], [0.5 / 19, 0.5 / 19], rtol=1e-6)
    np.testing.assert_allclose(sizes[0], [0.1, 0.1], rtol=1e-6)


def test_interface_and_metadata(detector_model: onnx.ModelProto) -> None:
    session = ort.InferenceSession(detector_model.SerializeToString(), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert (image.name, image.type, image.shape) == ("image", "tensor(uint8)", [1, 300, 300, 3])
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("boxes", [1, 1917, 4]), ("scores", [1, 1917])]
    boxes, scores = session.run(None, {"image": np.full((1, 300, 300, 3), 127, np.uint8)})
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.all(boxes[..., 2:] > boxes[..., :2])
    metadata = {p.key: p.value for p in detector_model.metadata_props}
    assert metadata["nms_iou"] == "0.6"
    assert metadata["source_sha256"] == hashlib.sha256(default_graph_path().read_bytes()).hexdigest()


def test_batch_norm_is_folded_into_convolutions(detector_model: onnx.ModelProto) -> None:
    ops = [n.op_type for n in detector_model.graph.node]
    assert "BatchNormalization" not in ops
    # Transposes: the input once, and each of the 6 predictors' 2 heads before reshaping.
    assert ops.count("Transpose") == 1 + 12


def test_build_is_deterministic(detector_model: onnx.ModelProto) -> None:
    again = build_detector_model(default_graph_path())
    assert again.SerializeToString(deterministic=True) == detector_model.SerializeToString(deterministic=True)


def test_cli_writes_the_repository_layout(tmp_path: Path) -> None:
    main(["--out", str(tmp_path), "--models", "detector"])
    written = tmp_path / "detector" / "1" / "model.onnx"
    assert onnx.load(written).graph.output[0].name == "boxes"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["model.onnx"]
