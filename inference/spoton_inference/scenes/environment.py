"""``environment.json`` and the ``map.png`` floor plan of a generated scene.

Each camera's calibration is given as image/map point pairs of its ground-plane
homography: integer pixels on a grid below the horizon that see the floor, and
the floor points (metres) their rays hit, computed from the camera's intrinsics
and extrinsics. Fitting a homography to them (``cv2.findHomography``) recovers the
exact image-to-map mapping.

Example:
    >>> from spoton_inference.scenes.camera import PinholeCamera
    >>> camera = PinholeCamera.look_at((0.1, 5.0, 3.0), (6.0, 5.0), 60.0, 640, 480)
    >>> pairs = homography_pairs(camera, world_size=(20.0, 10.0))
    >>> len(pairs["image_points"]) == len(pairs["map_points"]) >= 4
    True
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np

from spoton_inference.scenes.backdrop import FLOOR_PX_PER_M, Hall, exit_points
from spoton_inference.scenes.camera import PinholeCamera
from spoton_inference.scenes.config import Occluder, SceneConfig

MAP_IMAGE = "map.png"
#: A JSON list of two numbers spread over lines by ``indent``, to put back on one.
_PAIR = re.compile(r"\[\s+(-?[\d.]+),\s+(-?[\d.]+)\s+\]")
#: Camera colours on the floor plan (BGR).
CAMERA_COLOURS = ((40, 40, 220), (200, 90, 20), (30, 150, 30), (160, 40, 160), (0, 140, 230), (120, 120, 0))


def homography_pairs(camera: PinholeCamera, world_size: tuple[float, float]) -> dict[str, list[list[float]]]:
    """Image/map point pairs of the camera's image-to-floor homography.

    Image points are integer pixels on a 4 x 4 grid below the horizon; only those
    that see the hall's floor (not a wall) are kept, so every pair is a floor spot
    one could mark and measure in the real hall.
    """
    width, height = camera.width, camera.height
    # Keep clear of the horizon, where tiny pixel errors mean metres on the floor.
    top = max(0.3 * height, camera.horizon_v() + 0.15 * height)
    us = np.round(np.linspace(0.05 * width, 0.95 * width, 4))
    vs = np.round(np.linspace(top, 0.95 * height, 4))
    image_points = np.array([(u, v) for v in vs for u in us])
    map_points = camera.image_to_ground(image_points)
    on_floor = np.all((map_points > 0.0) & (map_points < world_size), axis=1)
    if on_floor.sum() < 4:
        raise ValueError("the camera sees too little floor for a homography")
    return {
        "image_points": [[int(u), int(v)] for u, v in image_points[on_floor]],
        "map_points": [[round(float(x), 4), round(float(y), 4)] for x, y in map_points[on_floor]],
    }


def environment_document(config: SceneConfig, cameras: dict[str, PinholeCamera]) -> dict:
    """The ``environment.json`` content."""
    return {
        "id": config.env_id,
        "name": config.name,
        "map": {"image": MAP_IMAGE, "metres_per_pixel": config.metres_per_pixel},
        "cameras": [
            {
                "id": spec.id,
                "name": spec.name,
                "fps": config.fps,
                "width": spec.width,
                "height": spec.height,
                "homography": homography_pairs(cameras[spec.id], config.world_size),
            }
            for spec in config.cameras
        ],
    }


def write_environment(path: Path, config: SceneConfig, cameras: dict[str, PinholeCamera]) -> None:
    """Write ``environment.json`` (stable key order, two-space indent, one point per line)."""
    text = json.dumps(environment_document(config, cameras), indent=2)
    path.write_text(_PAIR.sub(r"[\1, \2]", text) + "\n")


def _footprint(camera: PinholeCamera, hall: Hall) -> np.ndarray:
    """Floor outline ``(N, 2)`` (metres) of what the camera sees, walls clipping it."""
    w, h = camera.width, camera.height
    border = [(u, 0.0) for u in np.linspace(0, w, 17)] + [(float(w), v) for v in np.linspace(0, h, 9)]
    border += [(u, float(h)) for u in np.linspace(w, 0, 17)] + [(0.0, v) for v in np.linspace(h, 0, 9)]
    points, _ = exit_points(hall, camera.centre, camera.rays(np.array(border)))
    return points[:, :2]


def _draw_occluders(plan: np.ndarray, occluders: tuple[Occluder, ...], scale: float) -> None:
    """Occluders' footprints, filled in their colour (darker) with a dark outline."""
    for occluder in occluders:
        centre, (width, depth) = np.array(occluder.centre) * scale, np.array(occluder.size) * scale
        if occluder.shape == "pillar":
            outline = cv2.ellipse2Poly(np.round(centre).astype(int).tolist(), (round(width / 2),) * 2, 0, 0, 360, 10)
        else:
            corners = centre + np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * (width / 2, depth / 2)
            outline = np.round(corners).astype(np.int32)
        cv2.fillPoly(plan, [outline], tuple(0.7 * channel for channel in occluder.colour), cv2.LINE_AA)
        cv2.polylines(plan, [outline], True, (50, 50, 50), 2, cv2.LINE_AA)


def render_map(config: SceneConfig, hall: Hall, cameras: dict[str, PinholeCamera]) -> np.ndarray:
    """Top-down floor plan: floor, walls, occluders, and each camera with its view outline."""
    scale = 1.0 / config.metres_per_pixel
    size = (round(config.world_size[0] * scale), round(config.world_size[1] * scale))
    plan = cv2.resize(hall.floor, size, interpolation=cv2.INTER_AREA if scale < FLOOR_PX_PER_M else cv2.INTER_LINEAR)
    plan = cv2.addWeighted(plan, 0.6, np.full_like(plan, 255), 0.4, 0)  # paler, so markers stand out
    cv2.rectangle(plan, (0, 0), (size[0] - 1, size[1] - 1), (60, 60, 60), 4)
    _draw_occluders(plan, config.occluders, scale)
    for index, spec in enumerate(config.cameras):
        colour = CAMERA_COLOURS[index % len(CAMERA_COLOURS)]
        outline = np.round(_footprint(cameras[spec.id], hall) * scale).astype(np.int32)
        overlay = plan.copy()
        cv2.fillPoly(overlay, [outline], colour)
        plan = cv2.addWeighted(overlay, 0.12, plan, 0.88, 0)
        cv2.polylines(plan, [outline], True, colour, 2, cv2.LINE_AA)
        position = np.array(spec.position[:2]) * scale
        cv2.circle(plan, np.round(position).astype(int).tolist(), 9, colour, -1, cv2.LINE_AA)
        # The label goes on the side the camera looks at, which is inside the hall.
        towards = np.array(spec.look_at) * scale - position
        (text_w, text_h), _ = cv2.getTextSize(spec.id, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
        anchor = position + towards / np.linalg.norm(towards) * 30 + (-text_w / 2, text_h / 2)
        anchor = np.clip(anchor, (2, text_h + 2), (size[0] - text_w - 2, size[1] - 4))
        cv2.putText(
            plan, spec.id, np.round(anchor).astype(int).tolist(), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2, cv2.LINE_AA
        )
    return plan
