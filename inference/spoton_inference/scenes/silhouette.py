"""The exact pixels a drawn figure covers, even the ones outside the image.

A figure's parts are rasterised (no anti-aliasing) onto a private canvas just big
enough for them; comparing it with the image bounds and with the frame's label
image tells how much of the figure is in frame and how much is not hidden.

Example:
    >>> import numpy as np
    >>> from spoton_inference.scenes.figure import Figure, ProjectedPart
    >>> square = np.array([[-5.0, 10.0], [5.0, 10.0], [5.0, 20.0], [-5.0, 20.0]])
    >>> figure = Figure(1, 3.0, np.zeros(2), [ProjectedPart(square, 3.0, (0, 0, 0), False)], square)
    >>> silhouette = Silhouette.of(figure)
    >>> _, crop = silhouette.inside((100, 100))  # the left half is off the image
    >>> round(crop.sum() / silhouette.mask.sum(), 1)
    0.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from spoton_inference.scenes.figure import SHIFT, Figure, to_fixed


@dataclass(frozen=True)
class Silhouette:
    """Binary mask of a figure on its own canvas.

    Attributes:
        mask: ``uint8`` canvas, 1 where the figure is drawn.
        origin: Image pixel ``(x, y)`` of ``mask[0, 0]`` (may be negative).
    """

    mask: np.ndarray
    origin: tuple[int, int]

    @classmethod
    def of(cls, figure: Figure) -> Silhouette:
        """Rasterise every part of ``figure``."""
        x0, y0, x1, y1 = figure.bounds()
        left, top = math.floor(x0) - 1, math.floor(y0) - 1
        mask = np.zeros((math.ceil(y1) - top + 2, math.ceil(x1) - left + 2), np.uint8)
        for part in figure.parts:
            cv2.fillConvexPoly(mask, to_fixed(part.polygon - (left, top)), 1, cv2.LINE_8, SHIFT)
        return cls(mask, (left, top))

    def inside(self, shape: tuple[int, ...]) -> tuple[tuple[slice, slice], np.ndarray]:
        """Image slices of the canvas's overlap with an image of ``shape`` and the mask crop there.

        The crop is empty when the canvas lies entirely outside the image.
        """
        left, top = self.origin
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + self.mask.shape[1], shape[1]), min(top + self.mask.shape[0], shape[0])
        x1, y1 = max(x1, x0), max(y1, y0)
        return (slice(y0, y1), slice(x0, x1)), self.mask[y0 - top : y1 - top, x0 - left : x1 - left]
