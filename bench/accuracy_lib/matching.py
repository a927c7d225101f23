"""One-to-one box matching within a frame, the way py-motmetrics matches for MOTA/IDF1:
Hungarian on 1 - IoU over the pairs with IoU >= the threshold."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

IOU_MATCH = 0.5
# Cost of a pair below the IoU threshold: larger than any whole valid assignment, so the
# solver only takes such a pair when nothing else is left, and it is filtered out after.
_FORBIDDEN = 1e6


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
    """(gt index, hyp index) pairs of a maximum-overlap one-to-one matching at IoU >= min_iou."""
    iou = iou_xywh(gt, hyp)
    if iou.size == 0:
        return []
    valid = iou >= min_iou
    rows, cols = linear_sum_assignment(np.where(valid, 1.0 - iou, _FORBIDDEN))
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if valid[r, c]]
