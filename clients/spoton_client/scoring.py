"""Score MOTChallenge exports against ground truth with py-motmetrics.

- per camera: local track ids against the ground-truth person ids of that camera;
- cross camera: global ids against ground-truth person ids over all cameras jointly, so an
  identity split between two cameras costs IDF1 (the multi-camera IDF1);
- map error: metres between where a matched box's foot point lands on the floor plan and
  where the person truly stood (``map_errors``).

Ground truth and hypotheses are ``frame,id,x,y,w,h,...`` lines; matching is IoU >= 0.5.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable
from pathlib import Path

import motmetrics as mm
import numpy as np
from scipy.optimize import linear_sum_assignment

IOU_MATCH = 0.5
# Cost of a pair below the IoU threshold: larger than any whole valid assignment, so the
# solver only takes such a pair when nothing else is left, and it is filtered out after.
_FORBIDDEN = 1e6

MotFrames = dict[int, tuple[np.ndarray, np.ndarray]]
# (frame, person id) -> (map_x, map_y) in metres.
MapPositions = dict[tuple[int, int], tuple[float, float]]
# Nx2 image points -> Nx2 map points (a camera's homography).
Projection = Callable[[np.ndarray], np.ndarray]


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


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of Nx4 and Mx4 x,y,w,h boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y2 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return inter / np.maximum(union, 1e-9)


def match_boxes(gt: np.ndarray, hyp: np.ndarray, min_iou: float = IOU_MATCH) -> list[tuple[int, int]]:
    """(gt index, hyp index) pairs of a maximum-overlap one-to-one matching at IoU >= min_iou,
    the way py-motmetrics matches within a frame (Hungarian on 1 - IoU)."""
    iou = iou_xywh(gt, hyp)
    if iou.size == 0:
        return []
    valid = iou >= min_iou
    rows, cols = linear_sum_assignment(np.where(valid, 1.0 - iou, _FORBIDDEN))
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if valid[r, c]]


def read_map_positions(path: Path) -> MapPositions:
    """(frame, person id) -> (map_x, map_y), from the generated scenes' ``map_positions.csv``
    (``frame,person_id,map_x,map_y``) or the real footage's ``gt/map.csv`` (``frame,id,x,y``)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and "person_id" in rows[0]:
        return {(int(r["frame"]), int(r["person_id"])): (float(r["map_x"]), float(r["map_y"])) for r in rows}
    return {(int(r["frame"]), int(r["id"])): (float(r["x"]), float(r["y"])) for r in rows}


def camera_map_errors(gt: MotFrames, hyp: MotFrames, project: Projection, positions: MapPositions) -> np.ndarray:
    """Metres between the projected foot points (bottom centre) of the hypothesis boxes matched
    to ground-truth boxes and the matched people's true positions: the error of the box *and*
    the calibration, which is what the floor plan shows. ``project`` is the camera's homography."""
    projected: list[np.ndarray] = []
    truth: list[tuple[float, float]] = []
    for frame in sorted(set(gt) & set(hyp)):
        gt_ids, gt_boxes = gt[frame]
        _, hyp_boxes = hyp[frame]
        # A person with no known ground position that frame cannot be scored.
        pairs = [(g, h) for g, h in match_boxes(gt_boxes, hyp_boxes) if (frame, int(gt_ids[g])) in positions]
        if not pairs:
            continue
        boxes = hyp_boxes[[h for _, h in pairs]]
        feet = np.stack([boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3]], axis=1)
        projected.append(project(feet))
        truth += [positions[(frame, int(gt_ids[g]))] for g, _ in pairs]
    if not projected:
        return np.zeros(0)
    return np.linalg.norm(np.concatenate(projected) - np.array(truth), axis=1)


@dataclasses.dataclass(frozen=True, slots=True)
class MapError:
    """Metres between where matched boxes land on the map and where the people were."""

    median: float
    p90: float
    boxes: int

    @classmethod
    def of(cls, errors: list[np.ndarray]) -> MapError:
        joined = np.concatenate(errors) if errors else np.zeros(0)
        if joined.size == 0:
            return cls(float("nan"), float("nan"), 0)
        return cls(float(np.median(joined)), float(np.percentile(joined, 90)), int(joined.size))
