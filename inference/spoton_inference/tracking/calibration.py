"""Re-ID that calibrates itself: what an embedder's distances mean, fitted on the task's own data.

Cosine distances of one embedder are not those of another, and a dropped-in OSNet or CLIP
model would need its "same person" and "two people" distances measured again by hand. The
video itself says which pairs are which, without any ground truth:

- two boxes in one frame of one camera are two people (*different* pairs; boxes that
  overlap are left out, since a person detected twice would pass for two);
- two crops of one confirmed track, a few frames apart, with no other box near it in
  between, are one person (*same* pairs).

:class:`CalibrationSampler` collects those pairs frame by frame (bounded reservoirs, so memory
does not grow with the task), and :meth:`CalibrationSampler.fit` turns them into a
:class:`ReidFit`: the median distance of each kind (the two ends of
:class:`~spoton_inference.tracking.appearance.ReidCalibration`) and a normal fit of each,
whose log-likelihood ratio (:meth:`ReidFit.log_odds`) is how strongly a distance says
"same person". Until enough pairs are seen, the configured calibration stands.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> fit = ReidFit.from_distances(rng.normal(0.2, 0.05, 500), rng.normal(0.5, 0.08, 500))
    >>> round(fit.calibration.same, 2), round(fit.calibration.different, 2)
    (0.2, 0.49)
    >>> bool(fit.log_odds(0.2) > 0 > fit.log_odds(0.5))
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from spoton_inference.tracking.appearance import ReidCalibration
from spoton_inference.tracking.boxes import iou_matrix

# Pairs of each kind a fit needs; before that, the configured calibration stands. Medians of
# a few dozen distances are already stable to a few hundredths.
MIN_PAIRS = 20
# Pairs kept of each kind (a reservoir sample over the whole task).
MAX_PAIRS = 5000
# A same pair's crops are at most this many frames apart, and nothing overlapped the track's
# box in between (IoU above ISOLATION_IOU with any other detection).
SAME_MAX_GAP_FRAMES = 10
ISOLATION_IOU = 0.0
# The strongest say appearance has (log-odds): no single distance is proof.
MAX_LOG_ODDS = 4.0
MAX_BROAD_LOG_ODDS = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class ReidFit:
    """What distances mean for this embedder on this data."""

    calibration: ReidCalibration
    same_mean: float
    same_std: float
    different_mean: float
    different_std: float
    same_pairs: int
    different_pairs: int

    @classmethod
    def from_distances(cls, same: np.ndarray, different: np.ndarray) -> ReidFit:
        same, different = np.asarray(same, np.float64), np.asarray(different, np.float64)
        return cls(
            calibration=ReidCalibration(float(np.median(same)), float(np.median(different))),
            same_mean=float(same.mean()),
            same_std=max(float(same.std()), 1e-3),
            different_mean=float(different.mean()),
            different_std=max(float(different.std()), 1e-3),
            same_pairs=len(same),
            different_pairs=len(different),
        )

    @classmethod
    def prior(cls, calibration: ReidCalibration) -> ReidFit:
        """What a configured calibration alone implies: each kind spread half the way to the other."""
        spread = max((calibration.different - calibration.same) / 2, 1e-3)
        return cls(calibration, calibration.same, spread, calibration.different, spread, 0, 0)

    @property
    def separation(self) -> float:
        """d': how many pooled standard deviations apart the two kinds lie (0: the embedder tells nothing)."""
        pooled = np.sqrt((self.same_std**2 + self.different_std**2) / 2)
        return (self.different_mean - self.same_mean) / pooled

    def log_odds(self, distance: np.ndarray | float) -> np.ndarray:
        """log p(distance | same) - log p(distance | different) under the two fitted normals,
        capped at +-MAX_LOG_ODDS: for crops of one camera seconds apart, the pairs it was fitted on."""
        d = np.asarray(distance, np.float64)
        same = -0.5 * ((d - self.same_mean) / self.same_std) ** 2 - np.log(self.same_std)
        diff = -0.5 * ((d - self.different_mean) / self.different_std) ** 2 - np.log(self.different_std)
        return np.clip(same - diff, -MAX_LOG_ODDS, MAX_LOG_ODDS)

    def broad_log_odds(self, distance: np.ndarray | float) -> np.ndarray:
        """The same question across cameras or long gaps: +MAX_BROAD_LOG_ODDS at the typical
        same distance and below, -MAX_BROAD_LOG_ODDS at the typical different one and above,
        linear between. Two views of one person from two cameras, or minutes apart, differ more
        than the crops the fit saw; the normals' ratio would call them certainly different."""
        return MAX_BROAD_LOG_ODDS * (1.0 - 2.0 * self.calibration.cost(distance))

    def to_json(self) -> dict[str, float | int]:
        return {
            "same_distance": self.calibration.same,
            "different_distance": self.calibration.different,
            "same_mean": self.same_mean,
            "same_std": self.same_std,
            "different_mean": self.different_mean,
            "different_std": self.different_std,
            "separation": self.separation,
            "same_pairs": self.same_pairs,
            "different_pairs": self.different_pairs,
        }


@dataclasses.dataclass(slots=True)
class _LastCrop:
    frame: int
    embedding: np.ndarray


class _Reservoir:
    """A uniform sample of at most ``size`` values from a stream (Vitter's algorithm R)."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.values: list[float] = []
        self._seen = 0
        self._size = size
        self._rng = rng

    def add(self, value: float) -> None:
        self._seen += 1
        if len(self.values) < self._size:
            self.values.append(value)
        else:
            slot = int(self._rng.integers(0, self._seen))
            if slot < self._size:
                self.values[slot] = value


class CalibrationSampler:
    """Collects same and different pairs from one task's frames; fits a :class:`ReidFit`."""

    def __init__(self, max_pairs: int = MAX_PAIRS, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self._same = _Reservoir(max_pairs, rng)
        self._different = _Reservoir(max_pairs, rng)
        self._last: dict[tuple[str, int], _LastCrop] = {}
        self._isolated: dict[tuple[str, int], int] = {}

    def add_frame(
        self,
        camera_id: str,
        frame: int,
        track_ids: Sequence[int],
        boxes: np.ndarray,
        crops: Sequence[np.ndarray | None],
        all_boxes: np.ndarray,
    ) -> None:
        """One camera's confirmed tracks matched this frame, their crops (None where none was
        computed) and every confident detection of the frame (for isolation)."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        overlap = iou_matrix(boxes, np.asarray(all_boxes, np.float32).reshape(-1, 4))
        # Each track's own detection is among all_boxes: count only the others.
        crowded = (overlap > ISOLATION_IOU).sum(axis=1) > 1
        for track_id, crowd, crop in zip(track_ids, crowded, crops, strict=True):
            key = (camera_id, int(track_id))
            if crowd:
                self._isolated.pop(key, None)
            else:
                self._isolated.setdefault(key, frame)
            if crop is None:
                continue
            last = self._last.get(key)
            since = self._isolated.get(key)
            if (
                last is not None
                and since is not None
                and since <= last.frame
                and frame - last.frame <= SAME_MAX_GAP_FRAMES
            ):
                self._same.add(_distance(last.embedding, crop))
            self._last[key] = _LastCrop(frame, crop)
        # Two tracks seen apart in one frame are two people; each is represented by its latest
        # crop, and a pair counts again only when one of them has a new crop.
        pair_overlap = iou_matrix(boxes, boxes)
        latest = [self._last.get((camera_id, int(t))) for t in track_ids]
        for i in range(len(track_ids)):
            for j in range(i + 1, len(track_ids)):
                a, b = latest[i], latest[j]
                if a is None or b is None or pair_overlap[i, j] > 0.0 or max(a.frame, b.frame) != frame:
                    continue
                if frame - min(a.frame, b.frame) <= SAME_MAX_GAP_FRAMES:
                    self._different.add(_distance(a.embedding, b.embedding))

    def forget_older_than(self, frame: int) -> None:
        """Drop per-track state of tracks unseen since ``frame`` (bounds memory on long tasks)."""
        self._last = {k: v for k, v in self._last.items() if v.frame >= frame}
        self._isolated = {k: v for k, v in self._isolated.items() if k in self._last}

    @property
    def pairs(self) -> tuple[int, int]:
        return len(self._same.values), len(self._different.values)

    def fit(self, prior: ReidCalibration, min_pairs: int = MIN_PAIRS) -> ReidFit:
        """The fit on the pairs seen so far: each kind from its own pairs once it has
        ``min_pairs`` of them, from the prior (:meth:`ReidFit.prior`) until then. No blend of
        the two: a dropped-in embedder's distances may lie on another scale altogether. Where
        the result would not tell the kinds apart (one from the data, one from a prior on
        another scale, say), the prior stands whole."""
        base = ReidFit.prior(prior)
        same = _kind(self._same.values, min_pairs, prior.same, base.same_std)
        different = _kind(self._different.values, min_pairs, prior.different, base.different_std)
        if different[0] <= same[0]:
            return base
        return ReidFit(
            ReidCalibration(same[0], different[0]),
            same[1],
            same[2],
            different[1],
            different[2],
            len(self._same.values),
            len(self._different.values),
        )


def _kind(values: list[float], min_pairs: int, prior: float, prior_std: float) -> tuple[float, float, float]:
    """(median, mean, std) of one kind's distances, or the prior's while there are too few."""
    if len(values) < min_pairs:
        return prior, prior, prior_std
    data = np.asarray(values, np.float64)
    return float(np.median(data)), float(data.mean()), max(float(data.std()), 1e-3)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return 1.0 - float(a @ b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-9)
