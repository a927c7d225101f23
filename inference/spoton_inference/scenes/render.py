"""Compose one camera frame and measure how much of each person it shows.

Drawing order is the painter's: backdrop, floor shadows, then people far to near.
Each person's silhouette (see :mod:`~spoton_inference.scenes.silhouette`) also
goes into a label image (which person owns each pixel), which gives the exact
drawn extent and the unoccluded fraction of everyone.

Example:
    >>> import numpy as np
    >>> from spoton_inference.scenes.camera import PinholeCamera
    >>> from spoton_inference.scenes.config import SceneConfig
    >>> from spoton_inference.scenes.people import sample_people
    >>> people = sample_people(np.random.default_rng(0), SceneConfig(n_people=3))
    >>> camera = PinholeCamera.look_at((10.0, 11.5, 3.5), (10.0, 5.0), 80.0, 320, 240)
    >>> backdrop = np.full((240, 320, 3), 128, np.uint8)
    >>> frame, sightings = render_frame(camera, backdrop, people, 0, np.random.default_rng(0))
    >>> frame.shape, all(0.0 <= s.visible <= s.in_frame <= 1.0 for s in sightings)
    ((240, 320, 3), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from spoton_inference.scenes.camera import PinholeCamera
from spoton_inference.scenes.figure import Figure, draw_figure, project_figure, shadow_mask
from spoton_inference.scenes.people import Person
from spoton_inference.scenes.silhouette import Silhouette

#: Relative strength of the cloth-like grain on figures; in trials it raised the
#: detector's recall by several points over perfectly smooth shading.
FABRIC_GRAIN = 0.12


@dataclass(frozen=True)
class Sighting:
    """How one person appears in one camera frame.

    Attributes:
        person_id: Global person id.
        box: Drawn extent clipped to the image, ``(x0, y0, x1, y1)`` in whole pixels
            (pixel ``i`` spans ``[i, i+1)``).
        foot: Pixel ``(u, v)`` of the person's floor position.
        in_frame: Fraction of the figure's pixels inside the image.
        visible: Fraction of the figure's pixels inside the image and not covered
            by nearer people (``visible <= in_frame``).
    """

    person_id: int
    box: tuple[int, int, int, int]
    foot: tuple[float, float]
    in_frame: float
    visible: float


def _add_grain(frame: np.ndarray, silhouette: Silhouette, rng: np.random.Generator) -> None:
    """Fine multiplicative noise on the figure's pixels, like cloth and skin texture."""
    window, mask = silhouette.inside(frame.shape)
    if not mask.any():
        return
    grain = cv2.GaussianBlur(rng.standard_normal(mask.shape, dtype=np.float32), (0, 0), 0.8)
    grain *= FABRIC_GRAIN / (grain.std() + 1e-6)
    roi = frame[window]
    pixels = mask > 0
    roi[pixels] = np.clip(roi[pixels] * (1.0 + grain[pixels, None]), 0, 255).astype(np.uint8)


def _sighting(figure: Figure, silhouette: Silhouette, label: np.ndarray, label_value: int) -> Sighting | None:
    """Extent and visibility of ``figure``; ``None`` when no pixel lands in the image."""
    window, mask = silhouette.inside(label.shape)
    in_frame = np.count_nonzero(mask)
    if in_frame == 0:
        return None
    rows, cols = np.nonzero(mask)
    x0, y0 = window[1].start, window[0].start
    total = np.count_nonzero(silhouette.mask)
    unoccluded = np.count_nonzero(label[window][mask > 0] == label_value)
    return Sighting(
        person_id=figure.person_id,
        box=(int(x0 + cols.min()), int(y0 + rows.min()), int(x0 + cols.max() + 1), int(y0 + rows.max() + 1)),
        foot=(float(figure.foot[0]), float(figure.foot[1])),
        in_frame=in_frame / total,
        visible=unoccluded / total,
    )


def render_frame(
    camera: PinholeCamera, backdrop: np.ndarray, people: list[Person], frame_index: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[Sighting]]:
    """Draw ``people`` at 0-based ``frame_index`` over ``backdrop``.

    ``rng`` drives the cloth grain. Returns the BGR frame and a sighting for every
    person with a pixel in it, ordered by person id.
    """
    figures = [f for person in people if (f := project_figure(camera, person, frame_index)) is not None]
    figures.sort(key=lambda figure: -figure.depth)
    shade = shadow_mask(backdrop.shape[:2], figures)
    frame = (backdrop * (1.0 - shade[..., None])).astype(np.uint8)
    label = np.zeros(backdrop.shape[:2], np.uint16)
    silhouettes = []
    for index, figure in enumerate(figures, start=1):
        silhouette = Silhouette.of(figure)
        draw_figure(frame, figure)
        _add_grain(frame, silhouette, rng)
        window, mask = silhouette.inside(label.shape)
        label[window][mask > 0] = index
        silhouettes.append(silhouette)
    sightings = [
        sighting
        for index, (figure, silhouette) in enumerate(zip(figures, silhouettes, strict=True), start=1)
        if (sighting := _sighting(figure, silhouette, label, index)) is not None
    ]
    return frame, sorted(sightings, key=lambda sighting: sighting.person_id)


def add_sensor_noise(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Slight optical blur and grey-level noise, like a real (cheap) camera."""
    blurred = cv2.GaussianBlur(frame, (0, 0), 0.6)
    if sigma <= 0:
        return blurred
    noise = rng.standard_normal(frame.shape[:2], dtype=np.float32) * sigma
    return np.clip(blurred + noise[..., None], 0, 255).astype(np.uint8)
