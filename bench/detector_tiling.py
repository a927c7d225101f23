"""Detector tiling: recall, precision and time per frame, whole frame vs tiles, side by side.

    make bench-tiling
    .venv/bin/python bench/detector_tiling.py [--tiles 2x1 ...] [--stride N] [--scenes NAME ...]

The SSDLite detector squashes every frame to 300 x 300, so a far-away person is a few
pixels tall at the network's input. With the ``tiles`` config parameter of
``model_repository/detector`` the frame is also cut into overlapping tiles, each seen at the
full input size (``model.py`` explains the merge). This runs the serving model code
(``detector/1/model.py``'s ``Detector``, onnxruntime on one thread, as one Triton instance
does) over every ``--stride``-th frame of the accuracy suite (``var/bench/scenes``), scores
detections with score >= the service's track-start threshold against ground truth (IoU >=
0.5, as the accuracy bench) and prints, per scene and tiling, recall, precision, ms per
frame, and the ratios to the whole frame measured in the same run.

The last line is the suite's recall and time ratio for each tiling. Results go to
``bench/results/detector_tiling.json``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import av
import numpy as np
from accuracy_lib.matching import match_boxes
from accuracy_lib.motfile import xyxy_to_xywh
from accuracy_lib.report import machine_info

from spoton_client.scoring import read_mot
from spoton_inference.scenes.suite import build, suite
from spoton_inference.settings import REPO_ROOT, Settings

SCENES_DIR = REPO_ROOT / "var" / "bench" / "scenes"
DETECTOR_DIR = REPO_ROOT / "model_repository" / "detector" / "1"
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "detector_tiling.json"
WHOLE = "1x1"


def load_detector_module() -> ModuleType:
    """``detector/1/model.py`` imported by path (it is a Triton model, not a package)."""
    spec = importlib.util.spec_from_file_location("spoton_detector_model", DETECTOR_DIR / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def camera_frames(camera_dir: Path, stride: int) -> list[tuple[int, np.ndarray]]:
    """(1-based frame number, RGB frame) of every ``stride``-th frame over the sub-videos."""
    frames: list[tuple[int, np.ndarray]] = []
    number = 0
    for video in sorted(camera_dir.glob("sub_video_*.mp4")):
        with av.open(str(video)) as container:
            for frame in container.decode(video=0):
                number += 1
                if (number - 1) % stride == 0:
                    frames.append((number, frame.to_ndarray(format="rgb24")))
    return frames


def _zero_totals() -> dict[str, float]:
    """Counts and seconds of one tiling, summed over frames."""
    return {"gt": 0, "detections": 0, "matched": 0, "seconds": 0.0, "frames": 0}


def score_scene(scene_dir: Path, detectors: dict[str, object], stride: int, min_score: float) -> dict[str, dict]:
    """Per tiling: ground-truth boxes, detections, matches and seconds over the scene."""
    totals = {name: _zero_totals() for name in detectors}
    for camera_dir in sorted((scene_dir / "cameras").iterdir()):
        gt = read_mot(scene_dir / "ground_truth" / f"{camera_dir.name}.txt")
        for number, frame in camera_frames(camera_dir, stride):
            _, gt_boxes = gt.get(number, (None, np.zeros((0, 4))))
            for name, detector in detectors.items():
                started = time.perf_counter()
                boxes, _ = detector.detect(frame, min_score)  # type: ignore[attr-defined]
                elapsed = time.perf_counter() - started
                xywh = xyxy_to_xywh(boxes)
                t = totals[name]
                t["gt"] += len(gt_boxes)
                t["detections"] += len(xywh)
                t["matched"] += len(match_boxes(gt_boxes, xywh))
                t["seconds"] += elapsed
                t["frames"] += 1
    return totals


def summarise(t: dict) -> dict[str, float]:
    return {
        "recall": t["matched"] / max(t["gt"], 1),
        "precision": t["matched"] / max(t["detections"], 1),
        "ms_per_frame": 1000.0 * t["seconds"] / max(t["frames"], 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", nargs="+", default=["2x1"], help="tilings to compare with the whole frame")
    parser.add_argument("--stride", type=int, default=4, help="every N-th frame (default 4)")
    parser.add_argument("--scenes", nargs="+", metavar="NAME", help="a subset of the suite (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    names = [name for name, _ in suite() if not args.scenes or name in args.scenes]
    build(SCENES_DIR, tuple(names))
    model = load_detector_module()
    onnx = DETECTOR_DIR / "model.onnx"
    tilings = [WHOLE, *[t for t in args.tiles if t != WHOLE]]
    detectors = {t: model.Detector(onnx, model.DetectorParams.from_parameters({"tiles": t})) for t in tilings}
    min_score = Settings().detection_threshold

    rows: dict[str, dict[str, dict[str, float]]] = {}
    suite_totals = {t: _zero_totals() for t in tilings}
    print(f"{'scene':24s} {'tiles':5s} {'recall':>7s} {'prec':>6s} {'ms/frame':>9s} {'recall x':>9s} {'time x':>7s}")
    for name in names:
        totals = score_scene(SCENES_DIR / name, detectors, args.stride, min_score)
        rows[name] = {t: summarise(totals[t]) for t in tilings}
        for t in tilings:
            for key, value in totals[t].items():
                suite_totals[t][key] += value
            r, base = rows[name][t], rows[name][WHOLE]
            print(
                f"{name:24s} {t:5s} {r['recall']:7.3f} {r['precision']:6.3f} {r['ms_per_frame']:9.1f}"
                f" {r['recall'] / base['recall']:9.2f} {r['ms_per_frame'] / base['ms_per_frame']:7.2f}"
            )
    overall = {t: summarise(suite_totals[t]) for t in tilings}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "machine": machine_info(),
                "stride": args.stride,
                "min_score": min_score,
                "scenes": rows,
                "suite": overall,
            },
            indent=2,
        )
        + "\n"
    )
    base = overall[WHOLE]
    print(
        "suite: "
        + "; ".join(
            f"tiles {t}: recall {overall[t]['recall']:.3f} ({overall[t]['recall'] / base['recall']:.2f}x),"
            f" {overall[t]['ms_per_frame'] / base['ms_per_frame']:.2f}x the time per frame"
            for t in tilings
            if t != WHOLE
        )
        + f" (whole frame: recall {base['recall']:.3f}, {base['ms_per_frame']:.1f} ms/frame)"
    )


if __name__ == "__main__":
    main()
