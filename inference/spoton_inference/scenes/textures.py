"""Procedural textures of the hall: tiled floor, painted walls, lit ceiling.

Textures are images in surface coordinates at a given resolution (pixels per
metre). The floor texture doubles as the floor plan background, so what the
cameras see on the floor lines up with ``map.png``.

Example:
    >>> import numpy as np
    >>> floor = floor_texture(np.random.default_rng(0), (4.0, 3.0), px_per_m=50)
    >>> floor.shape, floor.dtype
    ((150, 200, 3), dtype('uint8'))
"""

from __future__ import annotations

import cv2
import numpy as np

#: Side of a floor tile in metres.
TILE_M = 1.0
WALL_PAINTS: tuple[tuple[int, int, int], ...] = ((200, 214, 222), (176, 196, 205), (210, 200, 185), (190, 205, 190))


def _noise(rng: np.random.Generator, shape: tuple[int, int], blur: float, amplitude: float) -> np.ndarray:
    """Smooth random field with roughly unit spread times ``amplitude``."""
    field = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), blur)
    return field / (field.std() + 1e-6) * amplitude


def floor_texture(rng: np.random.Generator, world_size: tuple[float, float], px_per_m: float) -> np.ndarray:
    """Tiled floor of ``world_size`` metres, image rows follow map ``y``."""
    width, height = round(world_size[0] * px_per_m), round(world_size[1] * px_per_m)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) / px_per_m
    tile_x, tile_y = (xs // TILE_M).astype(int), (ys // TILE_M).astype(int)
    n_x, n_y = int(world_size[0] // TILE_M) + 1, int(world_size[1] // TILE_M) + 1
    # Each tile differs a little in tone, like real stone or vinyl tiles.
    tone = rng.uniform(-12, 12, (n_y, n_x)).astype(np.float32)
    base = np.array([120, 118, 115], np.float32) + tone[tile_y, tile_x][..., None]
    base += _noise(rng, (height, width), 1.5, 5.0)[..., None] + _noise(rng, (height, width), 12.0, 6.0)[..., None]
    # A darker walkway band through the middle of the hall.
    band = np.abs(ys - world_size[1] / 2) < 1.2
    base[band] *= np.array([0.8, 0.85, 0.9], np.float32)
    grout = np.minimum(xs % TILE_M, ys % TILE_M) < 0.02
    base[grout] = (95, 100, 105)
    return np.clip(base, 0, 255).astype(np.uint8)


def wall_texture(
    rng: np.random.Generator, length_m: float, height_m: float, px_per_m: float, paint: tuple[int, int, int]
) -> np.ndarray:
    """A painted wall; columns run along the wall, row 0 is the top (ceiling)."""
    width, height = round(length_m * px_per_m), round(height_m * px_per_m)

    def row(metres_above_floor: float) -> int:
        return round((height_m - metres_above_floor) * px_per_m)

    def col(metres: float) -> int:
        return round(metres * px_per_m)

    wall = np.empty((height, width, 3), np.float32)
    wall[:] = paint
    wall += _noise(rng, (height, width), 2.0, 3.0)[..., None]
    wall[row(1.0) : row(0.12)] *= 0.9  # lower wall panel
    wall[row(0.12) :] = (60, 65, 70)  # skirting board
    wall[row(1.02) : row(1.0)] = (120, 125, 130)  # dado rail
    # Doors, windows and posters at random places along the wall, left to right.
    position = rng.uniform(0.5, 2.0)
    while position < length_m - 2.0:
        kind = rng.choice(["door", "window", "poster"])
        if kind == "door":
            cv2.rectangle(wall, (col(position), row(2.15)), (col(position + 1.0), row(0.0)), (40, 60, 95), -1)
            cv2.rectangle(wall, (col(position + 0.05), row(2.1)), (col(position + 0.95), row(0.0)), (60, 95, 140), -1)
            cv2.circle(wall, (col(position + 0.85), row(1.05)), max(1, col(0.03)), (170, 190, 200), -1)
            position += 1.0
        elif kind == "window":
            cv2.rectangle(wall, (col(position), row(2.6)), (col(position + 1.6), row(1.2)), (90, 90, 95), -1)
            glass = wall[row(2.55) : row(1.25), col(position + 0.05) : col(position + 1.55)]
            glass[:] = (235, 215, 190)
            glass *= np.linspace(1.0, 0.8, glass.shape[0], dtype=np.float32)[:, None, None]
            position += 1.6
        else:
            colour = tuple(float(c) for c in rng.integers(40, 220, 3))
            cv2.rectangle(wall, (col(position), row(2.0)), (col(position + 0.7), row(1.3)), colour, -1)
            cv2.rectangle(wall, (col(position + 0.1), row(1.9)), (col(position + 0.6), row(1.7)), (245, 245, 245), -1)
            position += 0.7
        position += rng.uniform(1.0, 4.0)
    return np.clip(wall, 0, 255).astype(np.uint8)


def ceiling_texture(world_size: tuple[float, float], px_per_m: float) -> np.ndarray:
    """Light grey ceiling with a grid of bright lamp panels (rows follow map ``y``)."""
    width, height = round(world_size[0] * px_per_m), round(world_size[1] * px_per_m)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) / px_per_m
    ceiling = np.full((height, width, 3), 205, np.uint8)
    lamps = ((xs % 4.0) > 1.5) & ((xs % 4.0) < 2.5) & ((ys % 4.0) > 1.8) & ((ys % 4.0) < 2.2)
    ceiling[lamps] = 250
    return ceiling
