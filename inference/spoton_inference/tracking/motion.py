"""A person's motion in one camera: a constant-velocity Kalman filter on the box, re-updated
along the gap when a lost person is found again.

The state is ``[cx, cy, a, h, vcx, vcy, va, vh]`` with ``a = w / h``, the parametrisation of
SORT, DeepSORT and ByteTrack: a person's aspect ratio barely changes, and noise scaled by the
box height treats near and far people alike.

Two additions carry it through low frame rates and occlusions, both from OC-SORT
(Cao et al., 2023):

- **observation-centric re-update** (:meth:`BoxMotion.update` after a gap): a filter left to
  predict for several frames drifts, and its velocity with it. When the person is seen again,
  the filter goes back to its state at the last observation and is updated along a straight
  line of virtual observations to the new one, so the velocity it goes on with is the one
  the person actually had over the gap;
- **observation-centric direction** (:attr:`BoxMotion.direction`): the unit direction of
  travel between real observations a few frames apart, which the tracker compares with the
  direction to a candidate detection.

The noise is given per second of video and scaled to the frame interval, so the same
settings hold at 7 and at 30 frames per second.

Example:
    >>> import numpy as np
    >>> m = BoxMotion.start(np.array([100.0, 50.0, 140.0, 170.0]), fps=10)
    >>> for x in (104.0, 108.0, 112.0):
    ...     m.predict()
    ...     m.update(np.array([x, 50.0, x + 40.0, 170.0]))
    >>> for _ in range(3):  # three frames unseen
    ...     m.predict()
    >>> m.update(np.array([128.0, 50.0, 168.0, 170.0]))
    >>> m.predict()
    >>> 131 < float(m.box()[0]) < 135  # about 4 px a frame, the velocity over the gap, carries on
    True
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)
# Noise as a fraction of the box height, from ByteTrack (tuned at 30 frames/s): position
# per frame, velocity per frame. Scaled here by the frame interval against that reference.
_REFERENCE_FPS = 30.0
_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160
# Observations kept for the direction of travel, and the span it is measured over.
DIRECTION_SPAN = 3


def to_xyah(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    h = max(y2 - y1, 1e-3)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / h, h])


def to_xyxy(xyah: np.ndarray) -> np.ndarray:
    cx, cy, a, h = xyah[:4]
    w = a * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


@dataclasses.dataclass(slots=True)
class BoxMotion:
    mean: np.ndarray
    cov: np.ndarray
    # Velocity noise grows with the frame interval: people change speed per second, not per frame.
    velocity_scale: float
    # The filter right after the last real observation, and that observation, for re-updates.
    _saved: tuple[np.ndarray, np.ndarray] | None = None
    _last_obs: np.ndarray | None = None
    _since_obs: int = 0
    # (frame counter, box centre) of recent real observations, for the direction of travel.
    _centres: collections.deque = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=DIRECTION_SPAN + 1)
    )
    _frame: int = 0

    @classmethod
    def start(cls, box: np.ndarray, fps: float) -> BoxMotion:
        z = to_xyah(np.asarray(box, dtype=np.float64))
        h = z[3]
        scale = max(_REFERENCE_FPS / max(fps, 1e-3), 1.0)
        std = np.array([2 * _STD_POSITION * h, 2 * _STD_POSITION * h, 1e-2, 2 * _STD_POSITION * h,
                        10 * _STD_VELOCITY * h * scale, 10 * _STD_VELOCITY * h * scale, 1e-5,
                        10 * _STD_VELOCITY * h * scale])  # fmt: skip
        motion = cls(np.concatenate([z, np.zeros(4)]), np.diag(std**2), scale)
        motion._remember(np.asarray(box, dtype=np.float64))
        return motion

    def predict(self) -> None:
        self._frame += 1
        self._since_obs += 1
        self._predict()

    def update(self, box: np.ndarray) -> None:
        """Correct with a real observation; after a gap, re-update along it first."""
        box = np.asarray(box, dtype=np.float64)
        gap = self._since_obs
        if gap > 1 and self._saved is not None and self._last_obs is not None:
            self.mean, self.cov = self._saved[0].copy(), self._saved[1].copy()
            for step in range(1, gap):
                self._predict()
                self._correct(self._last_obs + (box - self._last_obs) * step / gap)
            self._predict()
        self._correct(box)
        self._remember(box)

    def box(self) -> np.ndarray:
        return to_xyxy(self.mean)

    @property
    def direction(self) -> np.ndarray | None:
        """Unit direction of travel (image x, y) between observed centres up to DIRECTION_SPAN frames apart."""
        if len(self._centres) < 2:
            return None
        (f0, c0), (f1, c1) = self._centres[0], self._centres[-1]
        delta = c1 - c0
        norm = float(np.linalg.norm(delta))
        return delta / norm if f1 > f0 and norm > 1e-6 else None

    @property
    def last_centre(self) -> np.ndarray:
        return self._centres[-1][1]

    def _predict(self) -> None:
        h = self.mean[3]
        s = self.velocity_scale
        std = np.array([_STD_POSITION * h, _STD_POSITION * h, 1e-2, _STD_POSITION * h,
                        _STD_VELOCITY * h * s, _STD_VELOCITY * h * s, 1e-5, _STD_VELOCITY * h * s])  # fmt: skip
        self.mean = _F @ self.mean
        self.cov = _F @ self.cov @ _F.T + np.diag(std**2)

    def _correct(self, box: np.ndarray) -> None:
        z = to_xyah(box)
        h = self.mean[3]
        r = np.diag(np.array([_STD_POSITION * h, _STD_POSITION * h, 1e-1, _STD_POSITION * h]) ** 2)
        s = _H @ self.cov @ _H.T + r
        gain = np.linalg.solve(s, _H @ self.cov).T
        self.mean = self.mean + gain @ (z - _H @ self.mean)
        self.cov = self.cov - gain @ s @ gain.T

    def _remember(self, box: np.ndarray) -> None:
        self._saved = (self.mean.copy(), self.cov.copy())
        self._last_obs = box
        self._since_obs = 0
        self._centres.append((self._frame, (box[:2] + box[2:]) / 2))
