"""Image-to-map homographies: fit from point pairs, validate, and project foot points.

Example:
    >>> h = Homography.fit([(0, 0), (100, 0), (100, 100), (0, 100)],
    ...                    [(0, 0), (1, 0), (1, 1), (0, 1)])
    >>> [round(v, 3) for v in h.project_points([[50.0, 50.0]])[0]]
    [0.5, 0.5]
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import cv2
import numpy as np

from spoton_inference.domain.errors import InvalidArgument

# Below this |det| of the normalised matrix, the mapping collapses the plane.
_MIN_ABS_DET = 1e-9


@dataclasses.dataclass(frozen=True, slots=True)
class Homography:
    """A 3x3 image->map matrix with the point pairs it came from (if any)."""

    matrix: np.ndarray
    image_points: tuple[tuple[float, float], ...] = ()
    map_points: tuple[tuple[float, float], ...] = ()

    @classmethod
    def fit(
        cls,
        image_points: Sequence[Sequence[float]],
        map_points: Sequence[Sequence[float]],
    ) -> Homography:
        """Least-squares fit over all pairs; raises InvalidArgument when degenerate."""
        src, dst = _point_pairs(image_points, map_points)
        if len(src) < 4:
            raise InvalidArgument(f"homography needs at least 4 point pairs, got {len(src)}")
        if _collinear(src) or _collinear(dst):
            raise InvalidArgument("homography points are collinear; pick 4+ points spread over the floor")
        if len(src) == 4 and (_three_collinear(src) or _three_collinear(dst)):
            # Four pairs determine a homography only when no three of them lie on a line.
            raise InvalidArgument("three of the four homography points lie on one line; move one or add a fifth")
        matrix, _ = cv2.findHomography(src, dst, 0)
        if matrix is None:
            raise InvalidArgument("homography could not be fitted to these point pairs")
        return cls.from_matrix(matrix, image_points=src, map_points=dst)

    @classmethod
    def from_matrix(
        cls,
        matrix: Sequence[Sequence[float]] | np.ndarray,
        image_points: np.ndarray | Sequence[Sequence[float]] | None = None,
        map_points: np.ndarray | Sequence[Sequence[float]] | None = None,
    ) -> Homography:
        """A homography from its matrix; point pairs, when given, are kept to measure it by."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (3, 3) or not np.all(np.isfinite(m)):
            raise InvalidArgument("homography matrix must be 3x3 and finite")
        if abs(m[2, 2]) > 1e-12:
            m = m / m[2, 2]
        if abs(np.linalg.det(m)) < _MIN_ABS_DET:
            raise InvalidArgument("homography matrix is singular")
        src = dst = None
        if image_points is not None or map_points is not None:
            src, dst = _point_pairs(
                image_points if image_points is not None else [], map_points if map_points is not None else []
            )
            w = np.hstack([src, np.ones((len(src), 1))]) @ m[2]
            # A floor point maps with w of one sign; mixed signs mean the horizon runs between them.
            if len(w) and not (np.all(w > 0) or np.all(w < 0)):
                raise InvalidArgument(
                    "homography maps some image points beyond the horizon; "
                    "check that image_points and map_points are listed in the same order"
                )
        pairs = lambda pts: tuple((float(x), float(y)) for x, y in pts) if pts is not None else ()  # noqa: E731
        return cls(m, pairs(src), pairs(dst))

    def project_points(self, points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Map Nx2 image points to Nx2 map points (metres)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            return np.zeros((0, 2))
        homog = np.hstack([pts, np.ones((len(pts), 1))]) @ self.matrix.T
        return homog[:, :2] / homog[:, 2:3]

    def reprojection_error(self) -> float:
        """Mean map distance between projected image points and their map points."""
        if not self.image_points:
            return 0.0
        mapped = self.project_points(self.image_points)
        return float(np.mean(np.linalg.norm(mapped - np.asarray(self.map_points), axis=1)))


def foot_points(boxes: np.ndarray) -> np.ndarray:
    """Bottom-centre of x1,y1,x2,y2 boxes: where a standing person touches the floor."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2.0, boxes[:, 3]], axis=1)


def _point_pairs(
    image_points: np.ndarray | Sequence[Sequence[float]], map_points: np.ndarray | Sequence[Sequence[float]]
) -> tuple[np.ndarray, np.ndarray]:
    src, dst = _points(image_points, "image_points"), _points(map_points, "map_points")
    if len(src) != len(dst):
        raise InvalidArgument(
            f"homography needs matching lists of image_points and map_points, got {len(src)} and {len(dst)} points"
        )
    return src, dst


def _points(points: np.ndarray | Sequence[Sequence[float]], what: str) -> np.ndarray:
    bad = InvalidArgument(f"homography {what} must each be [x, y] with finite numbers")
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise bad from None
    if array.size == 0:
        return np.zeros((0, 2))
    if array.ndim != 2 or array.shape[1] != 2 or not np.all(np.isfinite(array)):
        raise bad
    return array


def _three_collinear(points: np.ndarray) -> bool:
    return any(_collinear(points[list(trio)]) for trio in itertools.combinations(range(len(points)), 3))


def _collinear(points: np.ndarray) -> bool:
    centred = points - points.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    return bool(singular[-1] <= 1e-9 * max(singular[0], 1.0))


@dataclasses.dataclass(frozen=True, slots=True)
class HomographySpec:
    """A homography as a client gives it: point pairs, a row-major 3x3 matrix, or both."""

    image_points: tuple[tuple[float, float], ...] = ()
    map_points: tuple[tuple[float, float], ...] = ()
    matrix: tuple[float, ...] = ()

    def build(self) -> Homography:
        """Validate and build; a matrix given with points is measured against them."""
        if self.matrix:
            if len(self.matrix) != 9:
                raise InvalidArgument(f"homography matrix needs 9 values (row-major 3x3), got {len(self.matrix)}")
            with_points = bool(self.image_points or self.map_points)
            return Homography.from_matrix(
                np.reshape(self.matrix, (3, 3)),
                self.image_points if with_points else None,
                self.map_points if with_points else None,
            )
        if not self.image_points and not self.map_points:
            raise InvalidArgument(
                "homography is empty: give 4 or more image_points with their map_points, or a 9-value matrix"
            )
        return Homography.fit(self.image_points, self.map_points)
