"""Walkers keep clear of occluders: no waypoint inside one, and no step into one.

Each occluder is kept out of as a circle (its :attr:`~spoton_inference.scenes.config.Occluder.radius_m`
plus :data:`CLEARANCE_M`). A walker whose next step would enter such a circle
steps along it instead, on the side it was heading for, so it walks round the
obstacle and turns back towards its waypoint once past.

Example:
    >>> import numpy as np
    >>> from spoton_inference.scenes.config import Occluder
    >>> pillar = Occluder("pillar", (5.0, 5.0), (0.6, 0.6))
    >>> is_clear(np.array([5.5, 5.0]), (pillar,)), is_clear(np.array([6.0, 5.0]), (pillar,))
    (False, True)
    >>> position, heading = step_around(np.array([4.3, 5.01]), 0.0, 0.12, (pillar,))
    >>> bool(np.linalg.norm(position - [5.0, 5.0]) >= 0.7 - 1e-9)
    True
"""

from __future__ import annotations

import math

import numpy as np

from spoton_inference.scenes.config import Occluder

#: Room kept between an occluder's footprint circle and a walker's floor position:
#: about half a body's width plus an arm's swing.
CLEARANCE_M = 0.4


def _keep_out(occluder: Occluder) -> tuple[np.ndarray, float]:
    return np.array(occluder.centre, float), occluder.radius_m + CLEARANCE_M


def is_clear(point: np.ndarray, occluders: tuple[Occluder, ...]) -> bool:
    """Whether a walker may stand at floor ``point``."""
    return all(np.linalg.norm(point - centre) >= radius for centre, radius in map(_keep_out, occluders))


def step_around(
    position: np.ndarray, heading: float, step: float, occluders: tuple[Occluder, ...]
) -> tuple[np.ndarray, float]:
    """Position after a ``step`` (metres) along ``heading``, and the heading actually walked.

    ``position`` must be clear of ``occluders``.
    """
    direction = np.array([math.cos(heading), math.sin(heading)])
    moved = position + step * direction
    for centre, radius in map(_keep_out, occluders):
        if np.linalg.norm(moved - centre) >= radius:
            continue
        radial = (position - centre) / np.linalg.norm(position - centre)
        tangent = np.array([-radial[1], radial[0]])
        if tangent @ direction < 0:
            tangent = -tangent
        # Along the tangent, then back onto the circle: an arc round the obstacle.
        around = position + step * tangent - centre
        moved = centre + radius * around / np.linalg.norm(around)
        heading = math.atan2(tangent[1], tangent[0])
    return moved, heading
