"""The static background each camera sees: the hall's floor, walls and ceiling.

The hall is a closed box, so every camera ray leaves it through exactly one
surface; ray casting that box once per camera gives a background image onto
which people are drawn every frame.

Example:
    >>> import numpy as np
    >>> from spoton_inference.scenes.camera import PinholeCamera
    >>> camera = PinholeCamera.look_at((1.0, 1.0, 3.0), (5.0, 4.0), 60.0, 64, 48)
    >>> hall = Hall.build(np.random.default_rng(0), (8.0, 6.0), 4.0)
    >>> render_backdrop(camera, hall).shape
    (48, 64, 3)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from spoton_inference.scenes.camera import PinholeCamera
from spoton_inference.scenes.textures import WALL_PAINTS, ceiling_texture, floor_texture, wall_texture

FLOOR_PX_PER_M = 100.0
WALL_PX_PER_M = 50.0
#: Supersampling factor of the background, against aliasing of far tiles.
SUPERSAMPLE = 2
#: Brightness of the surfaces: walls and ceiling get less light than the floor.
SURFACE_LIGHT = {"floor": 1.0, "ceiling": 0.9, "west": 0.8, "east": 0.85, "north": 0.9, "south": 0.75}


@dataclass(frozen=True)
class Hall:
    """Geometry and textures of the hall.

    Attributes:
        world_size: ``(width, depth)`` in metres.
        height: Wall height in metres.
        floor: Floor texture at ``FLOOR_PX_PER_M`` (rows follow map ``y``).
        ceiling: Ceiling texture at ``WALL_PX_PER_M``.
        walls: Wall textures at ``WALL_PX_PER_M`` keyed by ``west`` (x=0),
            ``east`` (x=width), ``north`` (y=0) and ``south`` (y=depth); columns
            run along increasing y (west/east) or x (north/south).
    """

    world_size: tuple[float, float]
    height: float
    floor: np.ndarray
    ceiling: np.ndarray
    walls: dict[str, np.ndarray]

    @classmethod
    def build(cls, rng: np.random.Generator, world_size: tuple[float, float], height: float) -> Hall:
        """Random textures for a hall of ``world_size`` metres and ``height``."""
        width, depth = world_size
        lengths = {"west": depth, "east": depth, "north": width, "south": width}
        walls = {
            name: wall_texture(rng, length, height, WALL_PX_PER_M, WALL_PAINTS[index])
            for index, (name, length) in enumerate(lengths.items())
        }
        return cls(
            world_size=world_size,
            height=height,
            floor=floor_texture(rng, world_size, FLOOR_PX_PER_M),
            ceiling=ceiling_texture(world_size, WALL_PX_PER_M),
            walls=walls,
        )


def exit_points(hall: Hall, origin: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where rays from ``origin`` (inside the hall) leave it.

    Returns the world points ``(..., 3)`` and the index ``(...)`` of the surface hit
    in ``SURFACE_LIGHT`` order (floor, ceiling, west, east, north, south).
    """
    width, depth = hall.world_size
    bounds = [(2, 0.0), (2, -hall.height), (0, 0.0), (0, width), (1, 0.0), (1, depth)]
    distances = []
    for axis, value in bounds:
        component = directions[..., axis]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (value - origin[axis]) / component
        distances.append(np.where(t > 0, t, np.inf))
    distances = np.stack(distances, axis=-1)
    surface = np.argmin(distances, axis=-1)
    t = np.take_along_axis(distances, surface[..., None], axis=-1)
    return origin + t * directions, surface


def _sample(texture: np.ndarray, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return cv2.remap(
        texture, cols.astype(np.float32), rows.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    ).astype(np.float32)


def vignetting(height: int, width: int) -> np.ndarray:
    """Brightness factor ``(height, width)`` of lens vignetting: corners a little darker, as with real cameras."""
    v, u = np.mgrid[0:height, 0:width]
    radius2 = ((u - width / 2) ** 2 + (v - height / 2) ** 2) / (width / 2) ** 2
    return 1.0 - 0.18 * radius2


def render_backdrop(camera: PinholeCamera, hall: Hall) -> np.ndarray:
    """The empty hall as ``camera`` sees it, ``(height, width, 3)`` BGR uint8."""
    rays = camera.pixel_rays(SUPERSAMPLE)
    points, surface = exit_points(hall, camera.centre, rays)
    x, y, up = points[..., 0], points[..., 1], -points[..., 2]
    floor_ppm, wall_ppm = FLOOR_PX_PER_M, WALL_PX_PER_M
    # Texture coordinates of the hit point on each surface (pixel centres at .5).
    lookups = {
        "floor": (hall.floor, x * floor_ppm - 0.5, y * floor_ppm - 0.5),
        "ceiling": (hall.ceiling, x * wall_ppm - 0.5, y * wall_ppm - 0.5),
        "west": (hall.walls["west"], y * wall_ppm - 0.5, (hall.height - up) * wall_ppm - 0.5),
        "east": (hall.walls["east"], y * wall_ppm - 0.5, (hall.height - up) * wall_ppm - 0.5),
        "north": (hall.walls["north"], x * wall_ppm - 0.5, (hall.height - up) * wall_ppm - 0.5),
        "south": (hall.walls["south"], x * wall_ppm - 0.5, (hall.height - up) * wall_ppm - 0.5),
    }
    image = np.zeros(rays.shape, np.float32)
    for index, (name, (texture, cols, rows)) in enumerate(lookups.items()):
        hit = surface == index
        if hit.any():
            image[hit] = _sample(texture, cols, rows)[hit] * SURFACE_LIGHT[name]
    image *= vignetting(*rays.shape[:2])[..., None]
    image = cv2.resize(image, (camera.width, camera.height), interpolation=cv2.INTER_AREA)
    return np.clip(image, 0, 255).astype(np.uint8)
