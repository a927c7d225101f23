"""Boxes and pillars standing in the hall, as each camera sees them.

Occluders do not move, so each camera ray-casts them once (supersampled, like
the backdrop) into an :class:`OccluderLayer`: colour, coverage and, per pixel,
the depth of the floor point under the nearest surface hit. People are drawn as
flat stand-ins at their floor position's depth, so comparing that depth with a
person's tells, pixel by pixel, whether the occluder hides the person (people
keep :data:`~spoton_inference.scenes.obstacles.CLEARANCE_M` away from occluders,
so the stand-in error of a body's thickness never matters). Surfaces are lit
from above like the rest of the hall.

Example:
    >>> import numpy as np
    >>> from spoton_inference.scenes.camera import PinholeCamera
    >>> from spoton_inference.scenes.config import Occluder
    >>> camera = PinholeCamera.look_at((0.0, 5.0, 3.0), (8.0, 5.0), 60.0, 160, 120)
    >>> layer = render_occluders(camera, (Occluder("pillar", (6.0, 5.0), (0.6, 0.6), 4.0),))
    >>> frame, label = np.zeros((120, 160, 3), np.uint8), np.zeros((120, 160), np.uint16)
    >>> composite(frame, label, np.array([7.0]), layer)  # nobody drawn: all pixels are background
    >>> bool(frame[60, 80].any()), bool(frame[60, 5].any())
    (True, False)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from spoton_inference.scenes.backdrop import SUPERSAMPLE, vignetting
from spoton_inference.scenes.camera import PinholeCamera
from spoton_inference.scenes.config import Occluder

#: Direction towards the light (world frame, z down): mostly from the ceiling.
TOWARDS_LIGHT = np.array([0.35, 0.55, -1.0]) / np.linalg.norm([0.35, 0.55, -1.0])
#: Brightness of a surface facing away from the light, and of one facing it.
AMBIENT, LIT = 0.55, 1.05
#: A pixel counts as hidden when the occluder covers at least this much of it.
HIDING_COVERAGE = 0.5


@dataclass(frozen=True)
class OccluderLayer:
    """What a camera sees of the occluders, cropped to where they are.

    Attributes:
        window: Image slices ``(rows, cols)`` the crop covers.
        colour: BGR ``float32`` colour ``(h, w, 3)`` where covered.
        coverage: Fraction ``(h, w)`` of each pixel the occluders cover.
        depth: Depth ``(h, w)`` of the floor point under the nearest surface
            (comparable with :attr:`~spoton_inference.scenes.figure.Figure.depth`);
            ``inf`` where nothing is hit.
    """

    window: tuple[slice, slice]
    colour: np.ndarray
    coverage: np.ndarray
    depth: np.ndarray


def _hit_box(occluder: Occluder, origin: np.ndarray, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray parameter ``(...)`` (``inf`` on a miss) and outward normal ``(..., 3)`` of a box hit."""
    (cx, cy), (width, depth) = occluder.centre, occluder.size
    low = np.array([cx - width / 2, cy - depth / 2, -occluder.height_m])
    high = np.array([cx + width / 2, cy + depth / 2, 0.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        t_low, t_high = (low - origin) / rays, (high - origin) / rays
    entry, leave = np.minimum(t_low, t_high), np.maximum(t_low, t_high)
    # A ray parallel to a slab gives nan there: inside the slab it constrains nothing.
    entry, leave = np.nan_to_num(entry, nan=-np.inf), np.nan_to_num(leave, nan=np.inf)
    t_in, t_out = entry.max(axis=-1), leave.min(axis=-1)
    axis = entry.argmax(axis=-1)
    hit = (t_in <= t_out) & (t_in > 0)
    normal = -np.sign(rays) * (np.arange(3) == axis[..., None])
    return np.where(hit, t_in, np.inf), normal


def _hit_pillar(occluder: Occluder, origin: np.ndarray, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray parameter ``(...)`` (``inf`` on a miss) and outward normal ``(..., 3)`` of a pillar hit."""
    radius, centre = occluder.size[0] / 2, np.array(occluder.centre)
    offset = origin[:2] - centre
    flat = rays[..., :2]
    a, b, c = (flat**2).sum(axis=-1), 2 * flat @ offset, offset @ offset - radius**2
    discriminant = b**2 - 4 * a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        t_side = (-b - np.sqrt(discriminant)) / (2 * a)
        z_side = origin[2] + t_side * rays[..., 2]
        side = (discriminant >= 0) & (t_side > 0) & (z_side >= -occluder.height_m) & (z_side <= 0)
        # The top, for cameras above it.
        t_top = (-occluder.height_m - origin[2]) / rays[..., 2]
        top_point = origin[:2] + t_top[..., None] * flat
        top = (t_top > 0) & (((top_point - centre) ** 2).sum(axis=-1) <= radius**2)
    t = np.minimum(np.where(side, t_side, np.inf), np.where(top, t_top, np.inf))
    radial = origin[:2] + t_side[..., None] * flat - centre
    normal = np.where(
        (top & (t_top <= t))[..., None],
        np.array([0.0, 0.0, -1.0]),
        np.concatenate([radial / radius, np.zeros_like(t_side)[..., None]], axis=-1),
    )
    return t, normal


def render_occluders(camera: PinholeCamera, occluders: tuple[Occluder, ...]) -> OccluderLayer | None:
    """Ray-cast ``occluders`` through ``camera``; ``None`` when it sees none of them."""
    if not occluders:
        return None
    rays = camera.pixel_rays(SUPERSAMPLE)
    nearest = np.full(rays.shape[:2], np.inf)
    colour = np.zeros(rays.shape, np.float32)
    for occluder in occluders:
        hit = _hit_pillar if occluder.shape == "pillar" else _hit_box
        t, normal = hit(occluder, camera.centre, rays)
        closer = t < nearest
        light = AMBIENT + (LIT - AMBIENT) * np.clip(np.nan_to_num(normal @ TOWARDS_LIGHT), 0.0, 1.0)
        colour[closer] = (light[..., None] * np.array(occluder.colour, np.float32))[closer]
        nearest[closer] = t[closer]
    covered = np.isfinite(nearest)
    if not covered.any():
        return None
    colour *= vignetting(*rays.shape[:2])[..., None]
    points = camera.centre + np.where(covered, nearest, 0.0)[..., None] * rays
    floor_depth = np.where(covered, camera.depth(points * [1.0, 1.0, 0.0]), np.inf)

    size = (camera.width, camera.height)
    coverage = cv2.resize(covered.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    premultiplied = cv2.resize(colour * covered[..., None], size, interpolation=cv2.INTER_AREA)
    blocks = floor_depth.reshape(camera.height, SUPERSAMPLE, camera.width, SUPERSAMPLE)
    depth = blocks.min(axis=(1, 3))
    rows, cols = np.nonzero(coverage > 0)
    window = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    safe = np.maximum(coverage[window], 1e-6)[..., None]
    return OccluderLayer(window, premultiplied[window] / safe, coverage[window], depth[window])


def composite(frame: np.ndarray, label: np.ndarray, label_depths: np.ndarray, layer: OccluderLayer | None) -> None:
    """Draw the occluders over whatever they are nearer than, in place.

    ``label`` holds ``k`` where the figure of depth ``label_depths[k - 1]`` was
    drawn last and 0 on the background; pixels the occluders hide become 0, so
    they no longer count as showing that person.
    """
    if layer is None:
        return
    depths = np.concatenate([[np.inf], label_depths])[label[layer.window]]
    in_front = layer.depth < depths
    alpha = np.where(in_front, layer.coverage, 0.0)[..., None]
    roi = frame[layer.window]
    roi[:] = np.clip(roi * (1.0 - alpha) + layer.colour * alpha + 0.5, 0, 255).astype(np.uint8)
    label[layer.window][in_front & (layer.coverage >= HIDING_COVERAGE)] = 0
