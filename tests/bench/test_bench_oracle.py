"""The oracle's rule on hand-made frames, and box matching under it."""

from __future__ import annotations

import itertools

import numpy as np
from accuracy_lib.matching import match_boxes
from accuracy_lib.motfile import FrameDetections
from accuracy_lib.oracle import FRESH_ID_BASE, oracle_camera, oracle_frame

START = 0.45


def _frame(rows: list[tuple[list[float], float]]) -> FrameDetections:
    return FrameDetections(np.array([b for b, _ in rows], float).reshape(-1, 4), np.array([s for _, s in rows]))


def test_match_boxes_is_one_to_one_at_the_threshold():
    gt = np.array([[0, 0, 10, 10], [100, 0, 10, 10]], float)
    hyp = np.array([[1, 0, 10, 10], [0, 0, 10, 10], [100, 6, 10, 10]], float)  # last one: IoU 0.25
    assert match_boxes(gt, hyp) == [(0, 1)]
    assert match_boxes(gt, np.zeros((0, 4))) == []


def test_confident_then_weak_then_false_positives():
    gt_ids = np.array([7, 8, 9])
    gt_boxes = np.array([[0, 0, 40, 100], [200, 0, 40, 100], [400, 0, 40, 100]], float)
    dets = _frame(
        [
            ([1, 0, 40, 100], 0.9),  # person 7
            ([0, 0, 40, 100], 0.2),  # weak duplicate of 7: 7 is taken by the confident box, dropped
            ([201, 1, 40, 100], 0.3),  # weak, person 8 has no confident box: kept as 8
            ([600, 0, 40, 100], 0.8),  # confident false positive: fresh id
            ([800, 0, 40, 100], 0.2),  # weak false positive: dropped
        ]
    )  # person 9 is missed altogether
    fresh = itertools.count(FRESH_ID_BASE)
    rows = oracle_frame(5, gt_ids, gt_boxes, dets, START, fresh)
    assert sorted((r.track_id, r.box[0], r.score) for r in rows) == [
        (7, 1.0, 0.9),
        (8, 201.0, 0.3),
        (FRESH_ID_BASE, 600.0, 0.8),
    ]
    assert all(r.frame == 5 for r in rows)


def test_fresh_ids_never_repeat_and_frames_without_ground_truth_are_all_false_positives():
    fresh = itertools.count(FRESH_ID_BASE)
    box = ([0, 0, 40, 100], 0.9)
    gt = {1: (np.array([3]), np.array([[0, 0, 40, 100]], float))}
    rows = oracle_camera(gt, {1: _frame([box]), 2: _frame([box]), 3: _frame([box])}, START, fresh)
    assert [(r.frame, r.track_id) for r in rows] == [(1, 3), (2, FRESH_ID_BASE), (3, FRESH_ID_BASE + 1)]
