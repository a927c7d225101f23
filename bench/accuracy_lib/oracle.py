"""The oracle: the service's own detections with ground-truth identities put on them.

It shows what a perfect associator would score with exactly these detections, so the gap
between the service and the oracle is what association loses, and the gap between the
oracle and 1.0 is what detection loses.

Which detections a perfect associator uses, per frame and camera:

1. confident detections (score >= the service's track-start threshold) are matched to the
   ground-truth boxes (Hungarian, IoU >= 0.5) and take the matched person's id;
2. ground-truth boxes still unmatched are matched the same way to the weak detections
   (0.1 <= score < threshold): like the service's low-score stage, a weak box only serves
   to keep a person who is there;
3. confident detections left unmatched are false positives a tracker would start tracks
   from; they stay, each with a fresh id of its own, and count as FP in MOTA and IDF1;
   weak detections left unmatched are dropped, as no tracker starts a track from them.

Ground-truth ids are global person ids, so the same rows serve as local and global ids.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from accuracy_lib.matching import match_boxes
from accuracy_lib.motfile import FrameDetections, MotRow, read_detections, write_rows
from spoton_client.scoring import read_mot

# Fresh ids for false positives start here, well above any generated person id.
FRESH_ID_BASE = 1_000_000


def oracle_frame(
    frame: int,
    gt_ids: np.ndarray,
    gt_boxes: np.ndarray,
    dets: FrameDetections,
    start_score: float,
    fresh_ids: Iterator[int],
) -> list[MotRow]:
    """One frame's oracle rows (see the module docs for the rule)."""
    confident = np.flatnonzero(dets.scores >= start_score)
    weak = np.flatnonzero(dets.scores < start_score)
    strong_pairs = match_boxes(gt_boxes, dets.boxes[confident])
    matched_gt = {g for g, _ in strong_pairs}
    gt_left = np.array([g for g in range(len(gt_ids)) if g not in matched_gt], dtype=int)
    weak_pairs = match_boxes(gt_boxes[gt_left], dets.boxes[weak])
    pairs = [(g, confident[d]) for g, d in strong_pairs] + [(gt_left[g], weak[d]) for g, d in weak_pairs]
    rows = [_row(frame, int(gt_ids[g]), dets, int(d)) for g, d in pairs]
    matched_confident = {d for _, d in strong_pairs}
    rows += [_row(frame, next(fresh_ids), dets, int(c)) for i, c in enumerate(confident) if i not in matched_confident]
    return rows


def oracle_camera(
    gt: dict[int, tuple[np.ndarray, np.ndarray]],
    detections: dict[int, FrameDetections],
    start_score: float,
    fresh_ids: Iterator[int],
) -> list[MotRow]:
    """Oracle rows of one camera; ``gt`` is ``spoton_client.scoring.read_mot`` of its ground truth."""
    empty_gt = (np.zeros(0, int), np.zeros((0, 4)))
    rows: list[MotRow] = []
    for frame in sorted(detections):
        gt_ids, gt_boxes = gt.get(frame, empty_gt)
        rows += oracle_frame(frame, gt_ids, gt_boxes, detections[frame], start_score, fresh_ids)
    return rows


def write_oracle(gt_dir: Path, det_dir: Path, out_dir: Path, camera_ids: list[str], start_score: float) -> None:
    """``<cam>.local.txt`` and ``<cam>.global.txt`` (the same rows) for every camera."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # One counter across cameras, so a false positive is never the same identity twice.
    fresh_ids = itertools.count(FRESH_ID_BASE)
    for cam in camera_ids:
        rows = oracle_camera(
            read_mot(gt_dir / f"{cam}.txt"), read_detections(det_dir / f"{cam}.detections.txt"), start_score, fresh_ids
        )
        write_rows(out_dir / f"{cam}.local.txt", rows)
        write_rows(out_dir / f"{cam}.global.txt", rows)


def _row(frame: int, track_id: int, dets: FrameDetections, index: int) -> MotRow:
    x, y, w, h = dets.boxes[index].tolist()
    return MotRow(frame, track_id, (x, y, w, h), float(dets.scores[index]))
