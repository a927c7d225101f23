"""Per-camera multi-object tracking: one tracker per camera, local track ids.

A compact ByteTrack-style tracker: constant-velocity box prediction, then two
association stages, each solved optimally with ``scipy.optimize.linear_sum_assignment``:

1. every track against confident detections, by IoU;
2. tracks seen last frame against low-score detections, by IoU, so a person who is
   partly hidden keeps their track instead of being dropped.

New tracks are born from confident detections only and are confirmed after ``min_hits``
matches; lost tracks are kept for ``max_age`` frames.

Example:
    >>> import numpy as np
    >>> t = IouTracker(TrackerConfig(min_hits=1))
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


@dataclasses.dataclass(frozen=True, slots=True)
class TrackerConfig:
    # Detections at or above this score can start and extend tracks (tuned on two seeded
    # demo scenes with the default detector; see the closing note of the spine issue).
    high_score: float = 0.45
    # Detections between low_score and high_score only extend tracks seen last frame.
    low_score: float = 0.1
    iou_threshold: float = 0.25
    low_iou_threshold: float = 0.4
    min_hits: int = 2
    max_age: int = 20


@dataclasses.dataclass(slots=True)
class _Track:
    track_id: int
    box: np.ndarray
    velocity: np.ndarray
    score: float
    hits: int = 1
    misses: int = 0
    reported: bool = False

    def predicted(self) -> np.ndarray:
        return self.box + self.velocity


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


def _assign(cost: np.ndarray, max_cost: float) -> list[tuple[int, int]]:
    if cost.size == 0:
        return []
    rows, cols = linear_sum_assignment(np.minimum(cost, 1e6))
    return [(r, c) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= max_cost]


class IouTracker:
    """ByteTrack-style IoU tracker with confirmation and a lost-track buffer."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._next_id = 1

    def update(self, boxes: np.ndarray, scores: np.ndarray) -> list[TrackedBox]:
        """Advance one frame with this frame's detections; returns confirmed matched tracks."""
        cfg = self.config
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        high = np.flatnonzero(scores >= cfg.high_score)
        low = np.flatnonzero((scores >= cfg.low_score) & (scores < cfg.high_score))
        tracks = list(range(len(self._tracks)))
        predicted = np.array([t.predicted() for t in self._tracks], np.float32).reshape(-1, 4)

        matches: list[tuple[int, int]] = []  # (track index, detection index)

        def stage(track_ids: list[int], det_ids: np.ndarray, cost: np.ndarray, max_cost: float) -> None:
            for r, c in _assign(cost, max_cost):
                matches.append((track_ids[r], int(det_ids[c])))

        stage(tracks, high, 1 - iou_matrix(predicted[tracks], boxes[high]), 1 - cfg.iou_threshold)
        taken_t = {t for t, _ in matches}

        recent = [t for t in tracks if t not in taken_t and self._tracks[t].misses == 0]
        stage(recent, low, 1 - iou_matrix(predicted[recent], boxes[low]), 1 - cfg.low_iou_threshold)

        self._apply(matches, boxes, scores)
        matched_dets = {d for _, d in matches}
        for d in high:
            if d not in matched_dets:
                self._tracks.append(_Track(self._next_id, boxes[d], np.zeros(4, np.float32), float(scores[d])))
                self._next_id += 1
        return self._report()

    def _apply(self, matches: list[tuple[int, int]], boxes: np.ndarray, scores: np.ndarray) -> None:
        matched = {t: d for t, d in matches}
        for i, track in enumerate(self._tracks):
            d = matched.get(i)
            if d is None:
                track.misses += 1
                track.box = track.predicted()
                track.velocity = track.velocity * 0.5
                continue
            # Smooth velocity so one jittery box does not throw the prediction off.
            track.velocity = 0.6 * track.velocity + 0.4 * (boxes[d] - track.box)
            track.box = boxes[d]
            track.score = float(scores[d])
            track.hits += 1
            track.misses = 0
        self._tracks = [t for t in self._tracks if t.misses <= self.config.max_age]

    def _report(self) -> list[TrackedBox]:
        out: list[TrackedBox] = []
        for track in self._tracks:
            if track.misses == 0 and track.hits >= self.config.min_hits:
                out.append(TrackedBox(track.track_id, track.box.copy(), track.score, not track.reported))
                track.reported = True
        return out
