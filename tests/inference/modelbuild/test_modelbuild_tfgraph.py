"""Reading the SSDLite frozen graph with the TF-free GraphDef subset."""

from __future__ import annotations

import numpy as np

from spoton_inference.modelbuild.tfgraph import Node


def test_graph_structure(ssd_graph: dict[str, Node]) -> None:
    image = ssd_graph["image_tensor"]
    assert image.op == "Placeholder"
    assert image.attrs["shape"] == (-1, -1, -1, 3)
    assert image.attrs["dtype"] == 4  # DT_UINT8
    assert {"num_detections", "detection_scores", "detection_boxes", "detection_classes"} <= set(ssd_graph)
    # Control inputs ("^node") are not data inputs.
    assert not any(i.startswith("^") for n in ssd_graph.values() for i in n.inputs)


def test_weights_decode_from_tensor_content(ssd_graph: dict[str, Node]) -> None:
    # Person-only head: 3 anchors x (background, person) in the first predictor.
    weights = ssd_graph["BoxPredictor_0/ClassPredictor/weights"].attrs["value"]
    assert weights.dtype == np.float32 and weights.shape == (1, 1, 576, 6)
    assert np.isfinite(weights).all() and weights.std() > 0


def test_scalars_decode_from_typed_fields(ssd_graph: dict[str, Node]) -> None:
    # The preprocessor maps 0..255 to -1..1: x * (2/255) - 1.
    assert ssd_graph["Preprocessor/mul/x"].attrs["value"] == np.float32(2 / 255)
    assert ssd_graph["Preprocessor/sub/y"].attrs["value"] == np.float32(1.0)
    ratios = ssd_graph["MultipleGridAnchorGenerator/Sqrt/x"].attrs["value"]
    np.testing.assert_array_equal(ratios, np.array([1.0, 2.0, 0.5], np.float32))


def test_attributes_decode(ssd_graph: dict[str, Node]) -> None:
    conv = ssd_graph["FeatureExtractor/MobilenetV2/Conv/Conv2D"]
    assert conv.attrs["strides"] == (1, 2, 2, 1)
    assert conv.attrs["padding"] == "SAME"
    bn = ssd_graph["FeatureExtractor/MobilenetV2/Conv/BatchNorm/FusedBatchNorm"]
    assert bn.attrs["is_training"] is False
    assert abs(bn.attrs["epsilon"] - 1e-3) < 1e-9
