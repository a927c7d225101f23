"""Re-ID appearance: calibrated distances and each track's running feature.

An embedder's cosine distances mean different things from one model to the next, so every
cost uses them through a :class:`ReidCalibration`: the distance typical of two crops of one
person maps to 0, the distance typical of two people to 1. The values come from the task's
own data (:mod:`spoton_inference.tracking.calibration`) or from settings.

Example:
    >>> import numpy as np

from spoton_inference.tracking.reid_defaults import DEFAULT_DIFFERENT_DISTANCE, DEFAULT_SAME_DISTANCE
    >>> cal = ReidCalibration(same=0.2, different=0.6)
    >>> np.round(cal.cost(np.array([0.2, 0.4, 0.9])), 3).tolist()
    [0.0, 0.5, 1.0]
    >>> f = Feature.of(np.array([1.0, 0.0]))
    >>> f.add(np.array([0.0, 1.0]), momentum=0.9)
    >>> np.round(f.vector, 3).tolist()
    [0.994, 0.11]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spoton_inference.tracking.reid_defaults import DEFAULT_DIFFERENT_DISTANCE, DEFAULT_SAME_DISTANCE


@dataclasses.dataclass(frozen=True, slots=True)
class ReidCalibration:
    """Cosine distances typical of one person (``same``) and of two people (``different``)."""

    same: float = DEFAULT_SAME_DISTANCE
    different: float = DEFAULT_DIFFERENT_DISTANCE

    def cost(self, distance: np.ndarray | float, clip: bool = True) -> np.ndarray:
        """Distance mapped to 0 (one person) .. 1 (two people); clipped unless told."""
        calibrated = (np.asarray(distance, dtype=np.float64) - self.same) / max(self.different - self.same, 1e-6)
        return np.clip(calibrated, 0.0, 1.0) if clip else calibrated

    def pairwise(self, a: list[np.ndarray | None], b: list[np.ndarray | None]) -> np.ndarray:
        """Calibrated cost of every pair where both sides are known; NaN elsewhere."""
        out = np.full((len(a), len(b)), np.nan)
        rows = [i for i, v in enumerate(a) if v is not None]
        cols = [j for j, v in enumerate(b) if v is not None]
        if rows and cols:
            distance = 1.0 - np.stack([a[i] for i in rows]) @ np.stack([b[j] for j in cols]).T
            out[np.ix_(rows, cols)] = self.cost(distance)
        return out


@dataclasses.dataclass(slots=True)
class Feature:
    """A unit vector kept as an exponential moving average of a person's crops."""

    vector: np.ndarray
    crops: int = 1

    @classmethod
    def of(cls, embedding: np.ndarray) -> Feature:
        return cls(_unit(embedding))

    def add(self, embedding: np.ndarray, momentum: float) -> None:
        self.vector = _unit(momentum * self.vector + (1 - momentum) * embedding)
        self.crops += 1


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)
