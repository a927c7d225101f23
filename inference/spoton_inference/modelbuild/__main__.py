"""Build the model repository's ONNX files.

Example:
    python -m spoton_inference.modelbuild --out model_repository
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import onnx

from spoton_inference.modelbuild.reid import build_reid_model
from spoton_inference.modelbuild.ssdlite import build_detector_model, default_graph_path

BUILDERS: dict[str, Callable[[], onnx.ModelProto]] = {
    "detector": lambda: build_detector_model(default_graph_path()),
    "reid": build_reid_model,
}


def write_model(model: onnx.ModelProto, path: Path) -> None:
    """Write ``model`` atomically, so Triton never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString(deterministic=True))
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m spoton_inference.modelbuild", description="Build the model repository's ONNX files."
    )
    parser.add_argument("--out", type=Path, required=True, help="model repository root; writes <model>/1/model.onnx")
    parser.add_argument("--models", nargs="+", choices=sorted(BUILDERS), default=sorted(BUILDERS))
    args = parser.parse_args(argv)
    for name in args.models:
        started = time.perf_counter()
        path = args.out / name / "1" / "model.onnx"
        write_model(BUILDERS[name](), path)
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
