"""Render heatmap cells as a PNG over the environment's floor plan.

With a floor-plan image and its metres per pixel, map (x, y) metres is pixel
(x / mpp, y / mpp), as the dashboard draws it. Without one, the picture is a plain
background spanning the cameras' homography map points (and the cells), padded, at most
``FALLBACK_MAX_SIDE`` pixels on its longer side. Counts are coloured on a log scale, so a
spot where people stood for minutes does not wash out where they walked.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np

from spoton_inference.domain.analytics import HeatmapCells
from spoton_inference.domain.environment import Environment

FALLBACK_MAX_SIDE = 800
# Larger floor plans are scaled down to this many pixels on their longer side.
MAX_SIDE = 4096
_PADDING_M = 0.5
_BACKGROUND = 236
_ALPHA = 0.65


@dataclasses.dataclass(frozen=True, slots=True)
class Canvas:
    """Where map metres land in the picture: pixel = (map - origin) * pixels_per_metre."""

    image: np.ndarray  # BGR uint8
    origin: tuple[float, float]
    pixels_per_metre: float


def floor_plan_canvas(image_path: Path | None, metres_per_pixel: float) -> Canvas | None:
    """The floor-plan image as a canvas, or None when there is none to read."""
    if image_path is None or metres_per_pixel <= 0 or not image_path.is_file():
        return None
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    scale = min(1.0, MAX_SIDE / max(image.shape[:2]))
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return Canvas(image, (0.0, 0.0), scale / metres_per_pixel)


def plain_canvas(extent: tuple[float, float, float, float]) -> Canvas:
    """A blank canvas over ``extent`` (x0, y0, x1, y1 in metres), padded."""
    x0, y0, x1, y1 = extent
    x0, y0, x1, y1 = x0 - _PADDING_M, y0 - _PADDING_M, x1 + _PADDING_M, y1 + _PADDING_M
    ppm = FALLBACK_MAX_SIDE / max(x1 - x0, y1 - y0)
    width, height = max(1, math.ceil((x1 - x0) * ppm)), max(1, math.ceil((y1 - y0) * ppm))
    return Canvas(np.full((height, width, 3), _BACKGROUND, np.uint8), (x0, y0), ppm)


def render(canvas: Canvas, ix: np.ndarray, iy: np.ndarray, count: np.ndarray, cell_size_m: float) -> bytes:
    """The PNG: each pixel takes the colour of the grid cell under its centre."""
    out = canvas.image.copy()
    if len(count):
        height, width = out.shape[:2]
        # The cell under every pixel column and row centre.
        xs = canvas.origin[0] + (np.arange(width) + 0.5) / canvas.pixels_per_metre
        ys = canvas.origin[1] + (np.arange(height) + 0.5) / canvas.pixels_per_metre
        cols, rows = np.floor(xs / cell_size_m).astype(np.int64), np.floor(ys / cell_size_m).astype(np.int64)
        cols, rows = cols - cols.min(), rows - rows.min()
        # The visible cells as a small dense grid, coloured once, then looked up per pixel.
        grid = np.zeros((rows.max() + 1, cols.max() + 1), np.float64)
        r, c = iy - np.floor(ys[0] / cell_size_m), ix - np.floor(xs[0] / cell_size_m)
        visible = (r >= 0) & (r < grid.shape[0]) & (c >= 0) & (c < grid.shape[1])
        grid[r[visible].astype(np.int64), c[visible].astype(np.int64)] = count[visible]
        level = np.log1p(grid) / math.log1p(float(count.max()))
        colours = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
        heat = colours[rows[:, None], cols[None, :]]
        alpha = np.where(grid > 0, _ALPHA, 0.0)[rows[:, None], cols[None, :], None]
        out = (out * (1 - alpha) + heat * alpha).astype(np.uint8)
    ok, png = cv2.imencode(".png", out)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return png.tobytes()


def paint(env: Environment, cells: HeatmapCells, cell_size_m: float) -> tuple[bytes, tuple[int, int]]:
    """The heatmap PNG over ``env``'s floor plan (or a plain background) and its (width, height); blocking."""
    canvas = floor_plan_canvas(env.floor_map.image, env.floor_map.metres_per_pixel)
    if canvas is None:
        canvas = plain_canvas(_map_extent(env, cells.ix, cells.iy, cell_size_m))
    png = render(canvas, cells.ix, cells.iy, cells.count, cell_size_m)
    height, width = canvas.image.shape[:2]
    return png, (width, height)


def _map_extent(env: Environment, ix: np.ndarray, iy: np.ndarray, cell: float) -> tuple[float, float, float, float]:
    """What a plain heatmap background spans: the cameras' homography map points and the cells."""
    xs: list[float] = []
    ys: list[float] = []
    for cam in env.cameras:
        if cam.homography is not None:
            xs += [float(p[0]) for p in cam.homography.map_points]
            ys += [float(p[1]) for p in cam.homography.map_points]
    if len(ix):
        xs += [float(ix.min()) * cell, float(ix.max() + 1) * cell]
        ys += [float(iy.min()) * cell, float(iy.max() + 1) * cell]
    if not xs:
        return 0.0, 0.0, 10.0, 10.0
    return min(xs), min(ys), max(xs), max(ys)
