"""The ``config.pbtxt`` files state the contract other code is written against."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tritonclient.grpc import model_config_pb2 as mc

MODEL_REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
CONTRACT = {
    "detector": {
        "max_batch_size": 0,
        # IMAGE or IMAGE_ENCODED (one JPEG/PNG file): the model refuses neither or both.
        "inputs": {
            "IMAGE": (mc.TYPE_UINT8, [-1, -1, 3], True),
            "IMAGE_ENCODED": (mc.TYPE_STRING, [1], True),
            "SCORE_THRESHOLD": (mc.TYPE_FP32, [1], True),
        },
        "outputs": {"BOXES": (mc.TYPE_FP32, [-1, 4]), "SCORES": (mc.TYPE_FP32, [-1])},
        "parameters": {
            "onnx_file",
            "format",
            "input_size",
            "score_threshold",
            "nms_iou",
            "max_detections",
            "tiles",
            "tile_overlap",
        },
    },
    "reid": {
        "max_batch_size": 64,
        "inputs": {"CROPS": (mc.TYPE_UINT8, [256, 128, 3], False)},
        "outputs": {"EMBEDDINGS": (mc.TYPE_FP32, [-1])},
        "parameters": {"onnx_file", "colour_histogram_weight"},
    },
}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_config_matches_contract(name: str, read_config: Callable[[Path], Any]) -> None:
    config = read_config(MODEL_REPOSITORY / name / "config.pbtxt")
    contract = CONTRACT[name]
    assert config.name == name and config.backend == "python"
    assert config.max_batch_size == contract["max_batch_size"]
    assert {i.name: (i.data_type, list(i.dims), i.optional) for i in config.input} == contract["inputs"]
    assert {o.name: (o.data_type, list(o.dims)) for o in config.output} == contract["outputs"]
    assert [(g.count, g.kind) for g in config.instance_group] == [(2, mc.ModelInstanceGroup.KIND_CPU)]
    # The embedded stack appends EXECUTION_ENV_PATH itself; a hardcoded one would clash.
    assert set(config.parameters) == contract["parameters"]
    # Two single-threaded instances, not dynamic batching, on two cores.
    assert not config.HasField("dynamic_batching")
