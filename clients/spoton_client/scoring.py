"""Score MOTChallenge exports against ground truth with py-motmetrics.

- per camera: local track ids against the ground-truth person ids of that camera;
- cross camera: global ids against ground-truth person ids over all cameras jointly, so an
  identity split between two cameras costs IDF1 (the multi-camera IDF1).

Ground truth and hypotheses are ``frame,id,x,y,w,h,...`` lines; matching is IoU >= 0.5.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import motmetrics as mm
import numpy as np

IOU_MATCH = 0.5


@dataclasses.dataclass(frozen=True, slots=True)
class Scores:
    idf1: float
    mota: float
    id_switches: int
    num_frames: int


def read_mot(path: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """frame -> (ids, boxes as x,y,w,h)."""
    frames: dict[int, tuple[list[int], list[list[float]]]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split(",")
            if len(parts) < 6:
                continue
            ids, boxes = frames.setdefault(int(float(parts[0])), ([], []))
            ids.append(int(float(parts[1])))
            boxes.append([float(v) for v in parts[2:6]])
    return {f: (np.array(i), np.array(b).reshape(-1, 4)) for f, (i, b) in frames.items()}


def _accumulate(acc: mm.MOTAccumulator, gt: dict, hyp: dict, frame_offset: int) -> None:
    empty = (np.zeros(0, int), np.zeros((0, 4)))
    for frame in sorted(set(gt) | set(hyp)):
        g_ids, g_boxes = gt.get(frame, empty)
        h_ids, h_boxes = hyp.get(frame, empty)
        dist = mm.distances.iou_matrix(g_boxes, h_boxes, max_iou=1 - IOU_MATCH)
        acc.update(g_ids.tolist(), h_ids.tolist(), dist, frameid=frame_offset + frame)


def _summary(acc: mm.MOTAccumulator) -> Scores:
    s = mm.metrics.create().compute(acc, metrics=["idf1", "mota", "num_switches", "num_frames"], name="x")
    row = s.loc["x"]
    return Scores(float(row["idf1"]), float(row["mota"]), int(row["num_switches"]), int(row["num_frames"]))


def score_camera(gt_file: Path, hyp_file: Path) -> Scores:
    acc = mm.MOTAccumulator(auto_id=False)
    _accumulate(acc, read_mot(gt_file), read_mot(hyp_file), 0)
    return _summary(acc)


def score_cross_camera(pairs: list[tuple[Path, Path]]) -> Scores:
    """All cameras in one accumulator; each camera's frames get their own id range."""
    acc = mm.MOTAccumulator(auto_id=False)
    for i, (gt_file, hyp_file) in enumerate(pairs):
        _accumulate(acc, read_mot(gt_file), read_mot(hyp_file), (i + 1) * 10_000_000)
    return _summary(acc)


def score_environment(
    gt_dir: Path, out_dir: Path, camera_ids: list[str], infix: str = ""
) -> tuple[dict[str, Scores], Scores]:
    """Per-camera scores (local ids) and the cross-camera score (global ids).

    ``infix`` picks other exports of the same task: ``"online."`` scores the online result
    (``<cam>.online.local.txt``) a refined task exports beside the refined one.
    """
    per_camera = {c: score_camera(gt_dir / f"{c}.txt", out_dir / f"{c}.{infix}local.txt") for c in camera_ids}
    cross = score_cross_camera([(gt_dir / f"{c}.txt", out_dir / f"{c}.{infix}global.txt") for c in camera_ids])
    return per_camera, cross
