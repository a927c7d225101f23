"""Per-camera multi-object tracking: one tracker per camera, local track ids.

This is the first, simple tracker: constant-velocity box prediction, IoU cost, and an
optimal assignment (``scipy.optimize.linear_sum_assignment``). Tracks are confirmed after
``min_hits`` matches and dropped after ``max_age`` frames unmatched.

Example:
    >>> import numpy as np
    >>> t = IouTracker(min_hits=1)
    >>> out = t.update(np.array([[10, 10, 50, 120]], np.float32), np.array([0.9], np.float32))
    >>> [(o.track_id, o.is_new) for o in out]
    [(1, True)]
    >>> out = t.update(np.array([[12, 10, 52, 120]], np.float32), np.array([0.9], np.float32))
    >>> [(o.track_id, o.is_new) for o in out]
    [(1, False)]
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclasses.dataclass(slots=True)
class _Track:
    track_id: int
    box: np.ndarray
    velocity: np.ndarray
    score: float
    hits: int = 1
    misses: int = 0
    reported: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class TrackedBox:
    """A confirmed track matched in the current frame."""

    track_id: int
    box: np.ndarray  # x1, y1, x2, y2 in pixels
    score: float
    # First frame this track is reported: the caller embeds it and assigns a global id.
    is_new: bool


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of Nx4 and Mx4 x1,y1,x2,y2 boxes."""
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


class IouTracker:
    """IoU + Hungarian tracker with confirmation and a lost-track buffer."""

    def __init__(self, iou_threshold: float = 0.25, min_hits: int = 2, max_age: int = 20) -> None:
        self.iou_threshold = iou_threshold
        self.min_hits = min_hits
        self.max_age = max_age
        self._tracks: list[_Track] = []
        self._next_id = 1

    def update(self, boxes: np.ndarray, scores: np.ndarray) -> list[TrackedBox]:
        """Advance one frame with this frame's detections; returns confirmed matched tracks."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        predicted = np.array([t.box + t.velocity for t in self._tracks], dtype=np.float32).reshape(-1, 4)

        matches: list[tuple[int, int]] = []
        iou = iou_matrix(predicted, boxes)
        if iou.size:
            rows, cols = linear_sum_assignment(-iou)
            matches = [(r, c) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= self.iou_threshold]
        matched_tracks = {r for r, _ in matches}
        matched_dets = {c for _, c in matches}

        for r, c in matches:
            track = self._tracks[r]
            # Smooth velocity so one jittery box does not throw the prediction off.
            track.velocity = 0.6 * track.velocity + 0.4 * (boxes[c] - track.box)
            track.box = boxes[c]
            track.score = float(scores[c])
            track.hits += 1
            track.misses = 0
        for r, track in enumerate(self._tracks):
            if r not in matched_tracks:
                track.misses += 1
                track.box = track.box + track.velocity
                track.velocity = track.velocity * 0.5
        self._tracks = [t for t in self._tracks if t.misses <= self.max_age]
        for c in range(len(boxes)):
            if c not in matched_dets:
                self._tracks.append(_Track(self._next_id, boxes[c], np.zeros(4, np.float32), float(scores[c])))
                self._next_id += 1

        out: list[TrackedBox] = []
        for track in self._tracks:
            if track.misses == 0 and track.hits >= self.min_hits:
                out.append(TrackedBox(track.track_id, track.box.copy(), track.score, not track.reported))
                track.reported = True
        return out
