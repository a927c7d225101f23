"""A constant-velocity Kalman filter on boxes, in (cx, cy, aspect, height) space.

The state is ``[cx, cy, a, h, vcx, vcy, va, vh]`` with ``a = w / h``, the parametrisation
of SORT/DeepSORT/ByteTrack: a person's aspect ratio barely changes, so it is a stable
state, and noise is scaled by the box height so near and far people are treated alike.

Example:
    >>> import numpy as np
    >>> kf = BoxKalman.start(np.array([100.0, 50.0, 140.0, 170.0]))
    >>> for x in (104.0, 108.0, 112.0):
    ...     kf.predict()
    ...     kf.update(np.array([x, 50.0, x + 40.0, 170.0]))
    >>> kf.predict()
    >>> bool(112.0 < kf.box()[0] < 118.0)
    True
"""

from __future__ import annotations

import dataclasses

import numpy as np

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)
# Noise as a fraction of the box height, per frame (ByteTrack's values).
_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160


def to_xyah(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    h = max(y2 - y1, 1e-3)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / h, h])


def to_xyxy(xyah: np.ndarray) -> np.ndarray:
    cx, cy, a, h = xyah[:4]
    w = a * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


@dataclasses.dataclass(slots=True)
class BoxKalman:
    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def start(cls, box: np.ndarray) -> BoxKalman:
        z = to_xyah(np.asarray(box, dtype=np.float64))
        h = z[3]
        std = np.array([2 * _STD_POSITION * h, 2 * _STD_POSITION * h, 1e-2, 2 * _STD_POSITION * h,
                        10 * _STD_VELOCITY * h, 10 * _STD_VELOCITY * h, 1e-5, 10 * _STD_VELOCITY * h])  # fmt: skip
        return cls(np.concatenate([z, np.zeros(4)]), np.diag(std**2))

    def predict(self) -> None:
        h = self.mean[3]
        std = np.array([_STD_POSITION * h, _STD_POSITION * h, 1e-2, _STD_POSITION * h,
                        _STD_VELOCITY * h, _STD_VELOCITY * h, 1e-5, _STD_VELOCITY * h])  # fmt: skip
        self.mean = _F @ self.mean
        self.cov = _F @ self.cov @ _F.T + np.diag(std**2)

    def update(self, box: np.ndarray) -> None:
        z = to_xyah(np.asarray(box, dtype=np.float64))
        h = self.mean[3]
        r = np.diag(np.array([_STD_POSITION * h, _STD_POSITION * h, 1e-1, _STD_POSITION * h]) ** 2)
        s = _H @ self.cov @ _H.T + r
        gain = np.linalg.solve(s, _H @ self.cov).T
        self.mean = self.mean + gain @ (z - _H @ self.mean)
        self.cov = self.cov - gain @ s @ gain.T

    def box(self) -> np.ndarray:
        return to_xyxy(self.mean)
