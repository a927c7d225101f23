"""Shared, session-scoped build products for the model-builder tests."""

from __future__ import annotations

import onnx
import pytest

from spoton_inference.modelbuild.reid import build_reid_model
from spoton_inference.modelbuild.ssdlite import build_detector_model, default_graph_path
from spoton_inference.modelbuild.tfgraph import Node, load_graph


@pytest.fixture(scope="session")
def ssd_graph() -> dict[str, Node]:
    return load_graph(default_graph_path())


@pytest.fixture(scope="session")
def detector_model() -> onnx.ModelProto:
    return build_detector_model(default_graph_path())


@pytest.fixture(scope="session")
def reid_model() -> onnx.ModelProto:
    return build_reid_model()
