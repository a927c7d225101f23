"""Project a posed body through a camera and draw it as a shaded figure.

Every body part becomes a convex image polygon; parts are drawn far to near so
the near arm covers the torso and the torso the far arm. Each part is filled in a
few nested layers, dark at the rim and light towards the upper left, which reads
as a lit cylinder (detectors trained on photos look for such shading, flat
silhouettes are found far less often).

Example:
    >>> import numpy as np
    >>> from spoton_inference.scenes.camera import PinholeCamera
    >>> from spoton_inference.scenes.config import SceneConfig
    >>> from spoton_inference.scenes.people import sample_people
    >>> person = sample_people(np.random.default_rng(0), SceneConfig(n_people=1))[0]
    >>> x, y = person.track.positions[0]
    >>> camera = PinholeCamera.look_at((x - 6.0, y, 3.0), (x, y), 60.0, 320, 240)
    >>> figure = project_figure(camera, person, frame_index=0)
    >>> frame = np.zeros((240, 320, 3), np.uint8)
    >>> draw_figure(frame, figure)
    >>> bool(frame.any()), figure.person_id
    (True, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from spoton_inference.scenes.body import pose_parts
from spoton_inference.scenes.camera import PinholeCamera
from spoton_inference.scenes.people import Colour, Person

#: A person with any part closer than this to the camera plane is not drawn
#: (metres); such a person fills or leaves the image anyway.
NEAR_PLANE_M = 0.3
#: Fixed-point bits for OpenCV's sub-pixel polygon drawing.
SHIFT = 4
#: Shading layers: (scale across the part, brightness factor), outermost first.
SHADING = ((1.0, 0.55), (0.8, 0.75), (0.6, 0.92), (0.38, 1.08), (0.18, 1.2))
_SHADING_SCALES = np.array([scale for scale, _ in SHADING])
_SHADING_BRIGHTNESS = np.array([brightness for _, brightness in SHADING])
#: How much layers shrink along a part's long axis, relative to across it.
ALONG_SHRINK = 0.3
#: Direction the light comes from, in image coordinates (up and to the left).
LIGHT = np.array([-0.45, -0.9]) / np.hypot(0.45, 0.9)
#: Shadow on the floor: semi-axes (side, forward) in metres and darkening.
SHADOW_RADII_M = (0.3, 0.4)
SHADOW_STRENGTH = 0.45


@dataclass(frozen=True)
class ProjectedPart:
    """One body part in the image.

    Attributes:
        polygon: Convex outline ``(N, 2)`` in continuous pixel coordinates.
        depth: Depth of the part's centre (for painter's order).
        colour: Fill colour (BGR).
        striped: Whether the part carries stripes.
    """

    polygon: np.ndarray
    depth: float
    colour: Colour
    striped: bool


@dataclass(frozen=True)
class Figure:
    """A person as one camera sees them in one frame.

    Attributes:
        person_id: Global person id.
        depth: Depth of the person's floor position (painter's order between people).
        foot: Pixel ``(u, v)`` of the floor position (between the feet).
        parts: Parts in drawing order, far to near.
        shadow: Floor shadow outline ``(N, 2)`` in pixels.
    """

    person_id: int
    depth: float
    foot: np.ndarray
    parts: list[ProjectedPart]
    shadow: np.ndarray

    def bounds(self) -> tuple[float, float, float, float]:
        """Unclipped ``(x0, y0, x1, y1)`` extent of the drawn parts."""
        points = np.concatenate([part.polygon for part in self.parts])
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)


def project_figure(camera: PinholeCamera, person: Person, frame_index: int) -> Figure | None:
    """``person`` at 0-based ``frame_index`` through ``camera``; ``None`` if behind it."""
    parts = []
    for part in pose_parts(person, frame_index):
        samples = part.samples()
        uv, depth = camera.project(samples)
        if depth.min() < NEAR_PLANE_M:
            return None
        hull = cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2)
        parts.append(ProjectedPart(hull, float(depth.mean()), part.colour, part.striped))
    parts.sort(key=lambda part: -part.depth)

    ground = np.array([*person.track.positions[frame_index], 0.0])
    heading = float(person.track.headings[frame_index])
    angles = np.linspace(0.0, 2 * np.pi, 24, endpoint=False)
    along, across = np.cos(angles) * SHADOW_RADII_M[1], np.sin(angles) * SHADOW_RADII_M[0]
    cos_h, sin_h = np.cos(heading), np.sin(heading)
    outline = ground + np.column_stack([along * cos_h - across * sin_h, along * sin_h + across * cos_h, 0 * angles])
    shadow, _ = camera.project(outline)
    (foot,), (depth,) = camera.project(ground[None])
    return Figure(person.id, float(depth), foot, parts, shadow)


def to_fixed(points: np.ndarray) -> np.ndarray:
    """Continuous pixel coordinates to OpenCV fixed-point (centres at integers)."""
    return np.round((points - 0.5) * (1 << SHIFT)).astype(np.int32)


def _shading_layers(polygon: np.ndarray) -> np.ndarray:
    """Nested copies ``(len(SHADING), N, 2)`` of ``polygon``, shifted towards the light.

    Layers shrink mostly across the polygon's long axis, so a limb gets a
    highlight along its length, like a lit cylinder. Each layer's shift is at most
    0.6 of its shrink along either axis, which keeps it inside elliptic outlines;
    :func:`draw_figure` clips what pokes out of other shapes.
    """
    mean = polygon.mean(axis=0)
    _, _, axes = np.linalg.svd(polygon - mean, full_matrices=False)
    # Centre on the middle of the outline's extent along both axes (the vertex mean
    # is off-centre where the hull has more vertices on one side).
    along, across = (polygon - mean) @ axes[0], (polygon - mean) @ axes[1]
    centre = mean + (along.max() + along.min()) / 2 * axes[0] + (across.max() + across.min()) / 2 * axes[1]
    along, across = (polygon - centre) @ axes[0], (polygon - centre) @ axes[1]
    shrink = 1.0 - _SHADING_SCALES[:, None]
    along_shrink, across_shrink = ALONG_SHRINK * shrink, shrink
    light_along, light_across = LIGHT @ axes[0], LIGHT @ axes[1]
    shifts = 0.6 * (
        (along_shrink * light_along * np.abs(along).max()) * axes[0]
        + (across_shrink * light_across * np.abs(across).max()) * axes[1]
    )
    return (
        centre
        + shifts[:, None, :]
        + (along * (1.0 - along_shrink))[..., None] * axes[0]
        + (across * (1.0 - across_shrink))[..., None] * axes[1]
    )


def _draw_stripes(frame: np.ndarray, polygon: np.ndarray, colour: Colour) -> None:
    """Darker horizontal bands (image rows) over ``polygon``, clipped to it."""
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int)
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, frame.shape[1]), min(y1, frame.shape[0])
    if x1 - x0 < 2 or y1 - y0 < 4:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(mask, to_fixed(polygon - [x0, y0]), 1, cv2.LINE_8, SHIFT)
    band = max(1, (y1 - y0) // 10)
    rows = (np.arange(y1 - y0) // band) % 2 == 1
    mask[~rows] = 0
    roi = frame[y0:y1, x0:x1]
    roi[mask > 0] = (roi[mask > 0] * 0.55 + np.array(colour) * 0.1).astype(np.uint8)


def draw_figure(frame: np.ndarray, figure: Figure) -> None:
    """Draw ``figure`` shaded onto BGR ``frame`` in place."""
    for part in figure.parts:
        # Highlights (brightness > 1) also lift dark colours, as a specular sheen would.
        sheen = 20.0 * (_SHADING_BRIGHTNESS > 1.0)[:, None]
        colours = np.clip(np.outer(_SHADING_BRIGHTNESS, part.colour) + sheen, 0, 255)
        outline = part.polygon.astype(np.float32)
        for layer, colour in zip(_shading_layers(part.polygon), colours.tolist(), strict=True):
            # Clip to the outline so the drawn figure never leaves its silhouette.
            area, clipped = cv2.intersectConvexConvex(layer.astype(np.float32), outline)
            if area > 0:
                cv2.fillConvexPoly(frame, to_fixed(clipped.reshape(-1, 2)), colour, cv2.LINE_AA, SHIFT)
        if part.striped:
            _draw_stripes(frame, part.polygon, part.colour)


def shadow_mask(shape: tuple[int, int], figures: list[Figure]) -> np.ndarray:
    """Soft floor shadows of ``figures`` as a float darkening mask ``shape`` in ``[0, 1]``."""
    mask = np.zeros(shape, np.float32)
    for figure in figures:
        cv2.fillConvexPoly(mask, to_fixed(figure.shadow), SHADOW_STRENGTH, cv2.LINE_AA, SHIFT)
    return cv2.GaussianBlur(mask, (0, 0), 2.0)
