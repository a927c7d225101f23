"""Box geometry shared by the tracking stages: IoU, centres and height-normalised distances.

Boxes are ``x1, y1, x2, y2`` pixel arrays, one row per box.

Example:
    >>> import numpy as np
    >>> a = np.array([[0.0, 0, 10, 20]])
    >>> b = np.array([[5.0, 0, 15, 20], [100, 100, 110, 120]])
    >>> np.round(iou_matrix(a, b), 3).tolist()
    [[0.333, 0.0]]
    >>> np.round(centre_distance(a, b), 2).tolist()
    [[0.25, 7.07]]
"""

from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of Nx4 and Mx4 boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def centres(boxes: np.ndarray) -> np.ndarray:
    """Nx2 box centres."""
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def heights(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)


def centre_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise centre distance over the height of ``a``'s box: people's size sets the scale."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    return np.linalg.norm(centres(a)[:, None] - centres(b)[None], axis=2) / heights(a)[:, None]


def height_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise height ratio, the larger over the smaller (1 = the same size)."""
    ha, hb = heights(a)[:, None], heights(b)[None, :]
    return np.maximum(ha, hb) / np.minimum(ha, hb)
