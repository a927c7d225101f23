"""Waypoints that send a walker across another person's path, timed to meet them.

People are simulated one after the other, so everyone walked before is known in
full. A crossing picks one of them and the moment, 1.5 to 6 s ahead, when the
walker (at its own speed, in a straight line) would reach where they will be
then; it passes that spot a little to one side (so the two brush past each other
rather than collide) and walks on 1.5 to 3 m beyond it. In the cameras the two
then pass in front of or behind each other, which is what tests a tracker's
occlusion handling and identity keeping.

Example:
    >>> import numpy as np
    >>> from spoton_inference.scenes.config import SceneConfig
    >>> from spoton_inference.scenes.motion import Track
    >>> # Someone walks along y = 4.5 at 1.2 m/s; the walker starts at (7, 1).
    >>> xs = 2.0 + 0.12 * np.arange(100)
    >>> other = Track(np.column_stack([xs, np.full(100, 4.5)]), np.zeros(100), np.zeros(100), np.ones(100))
    >>> target = crossing_waypoint(np.random.default_rng(0), SceneConfig(), np.array([7.0, 1.0]), 1.2, 0, [other])
    >>> bool(target[1] > 4.5)  # beyond the other's path
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from spoton_inference.scenes.config import SceneConfig
from spoton_inference.scenes.obstacles import is_clear

if TYPE_CHECKING:  # motion imports this module
    from spoton_inference.scenes.motion import Track

#: How far ahead (seconds) the meeting may be.
LOOKAHEAD_S = (1.5, 6.0)
#: The straight walk may miss the meeting by this much (metres) and still count.
TIMING_TOLERANCE_M = 0.6
#: Sideways distance (metres) at which the walker passes the other's spot.
PASS_OFFSET_M = (0.25, 0.6)
#: How far (metres) the walker carries on beyond the crossing.
OVERSHOOT_M = (1.5, 3.0)


def crossing_waypoint(
    rng: np.random.Generator,
    config: SceneConfig,
    position: np.ndarray,
    speed: float,
    frame_index: int,
    others: Sequence[Track],
) -> np.ndarray | None:
    """A waypoint through someone's path at 0-based ``frame_index``, or ``None`` if none fits.

    ``others`` are the tracks of people simulated before; ``speed`` is the
    walker's, in metres per second.
    """
    other = others[int(rng.integers(len(others)))]
    first = frame_index + round(LOOKAHEAD_S[0] * config.fps)
    last = min(frame_index + round(LOOKAHEAD_S[1] * config.fps), len(other.positions) - 1)
    if first > last:
        return None
    frames = np.arange(first, last + 1)
    spots = other.positions[frames]
    distances = np.linalg.norm(spots - position, axis=1)
    mismatch = np.abs(distances - speed * (frames - frame_index) / config.fps)
    best = int(np.argmin(mismatch))
    if mismatch[best] > TIMING_TOLERANCE_M:
        return None
    along = (spots[best] - position) / distances[best]
    side = np.array([-along[1], along[0]]) * rng.choice([-1.0, 1.0])
    passing = spots[best] + side * rng.uniform(*PASS_OFFSET_M)
    direction = (passing - position) / np.linalg.norm(passing - position)
    margin = config.waypoint_margin_m
    target = np.clip(passing + direction * rng.uniform(*OVERSHOOT_M), margin, np.array(config.world_size) - margin)
    return target if is_clear(target, config.occluders) else None
