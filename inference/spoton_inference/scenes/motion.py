"""Walking paths: people stroll between random waypoints on the floor.

Each person walks at a constant speed towards a waypoint, turning smoothly,
sometimes pausing on arrival, then picks the next waypoint: with chance
``crossing_fraction`` one across someone else's path (see
:mod:`~spoton_inference.scenes.crossing`), otherwise a random one. Walkers go
round occluders (see :mod:`~spoton_inference.scenes.obstacles`). The simulation
is discrete (one step per frame) and driven only by the given random generator,
so a seed fixes every path.

Example:
    >>> import numpy as np
    >>> from spoton_inference.scenes.config import SceneConfig
    >>> track = simulate_walk(np.random.default_rng(0), SceneConfig(), n_frames=50)
    >>> track.positions.shape, track.headings.shape
    ((50, 2), (50,))
    >>> bool(np.all(np.linalg.norm(np.diff(track.positions, axis=0), axis=1) < 0.2))
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spoton_inference.scenes.config import SceneConfig
from spoton_inference.scenes.crossing import crossing_waypoint
from spoton_inference.scenes.obstacles import is_clear, step_around

#: Heading relaxation rate towards the waypoint (1/s); about a quarter-second turn.
TURN_RATE = 4.0
#: A waypoint counts as reached within this distance (metres).
ARRIVAL_RADIUS_M = 0.3
#: Length of one full gait cycle (two steps) relative to body height.
GAIT_CYCLE_PER_HEIGHT = 0.8
#: Draws of a floor point before giving up on finding one clear of the occluders.
MAX_DRAWS = 1000


@dataclass(frozen=True)
class Track:
    """Per-frame state of one walker (index 0 is global frame 1).

    Attributes:
        positions: Floor position ``(T, 2)`` in metres (map coordinates).
        headings: Facing direction ``(T,)`` in radians (0 = +x, pi/2 = +y).
        gait_phase: Gait cycle phase ``(T,)`` in radians; drives the limb swing.
        stride: Limb swing amplitude ``(T,)`` in ``[0, 1]``; 0 while standing.
    """

    positions: np.ndarray
    headings: np.ndarray
    gait_phase: np.ndarray
    stride: np.ndarray


def _clear_point(rng: np.random.Generator, config: SceneConfig, candidate: np.ndarray) -> np.ndarray:
    """``candidate``, or else the first random floor point clear of the occluders."""
    margin = config.waypoint_margin_m
    for _ in range(MAX_DRAWS):
        if is_clear(candidate, config.occluders):
            return candidate
        candidate = rng.uniform([margin, margin], np.array(config.world_size) - margin)
    raise ValueError("the occluders leave no room to walk")


def _next_waypoint(rng: np.random.Generator, config: SceneConfig, current: np.ndarray) -> np.ndarray:
    """A random floor point away from the walls and at least ``min_leg_m`` from ``current``.

    It is never inside an occluder, or the walker would circle it for ever.
    """
    margin = config.waypoint_margin_m
    low, high = np.array([margin, margin]), np.array(config.world_size) - margin
    candidate = rng.uniform(low, high)
    # Rejection sampling; the bounded loop keeps tiny worlds from spinning forever.
    for _ in range(20):
        if np.linalg.norm(candidate - current) >= config.min_leg_m and is_clear(candidate, config.occluders):
            break
        candidate = rng.uniform(low, high)
    return _clear_point(rng, config, candidate)


def _pick_target(
    rng: np.random.Generator,
    config: SceneConfig,
    current: np.ndarray,
    speed: float,
    frame_index: int,
    others: Sequence[Track],
) -> np.ndarray:
    """The next waypoint: across someone's path (``crossing_fraction`` of the time) or random."""
    # The draw is skipped without crossings, so such scenes keep their random streams.
    if others and config.crossing_fraction > 0 and rng.random() < config.crossing_fraction:
        crossing = crossing_waypoint(rng, config, current, speed, frame_index, others)
        if crossing is not None:
            return crossing
    return _next_waypoint(rng, config, current)


def simulate_walk(
    rng: np.random.Generator,
    config: SceneConfig,
    n_frames: int,
    height_m: float = 1.75,
    others: Sequence[Track] = (),
) -> Track:
    """Simulate one walker for ``n_frames`` frames at ``config.fps``.

    ``others`` are the people already simulated, whose paths a crossing may cut.
    """
    dt = 1.0 / config.fps
    speed = rng.uniform(*config.walking_speed_mps)
    margin = config.waypoint_margin_m
    position = _clear_point(rng, config, rng.uniform([margin, margin], np.array(config.world_size) - margin))
    target = _pick_target(rng, config, position, speed, 0, others)
    heading = math.atan2(*(target - position)[::-1])
    phase = rng.uniform(0.0, 2 * math.pi)
    pause_left = 0.0
    blend = 1.0 - math.exp(-TURN_RATE * dt)
    phase_per_metre = 2 * math.pi / (GAIT_CYCLE_PER_HEIGHT * height_m)

    # Closer than this, a smooth turn could circle the waypoint forever: face it.
    snap_distance = 2.0 * speed / TURN_RATE
    stride = 1.0

    positions, headings, phases, strides = [], [], [], []
    for index in range(n_frames):
        walking = pause_left <= 0.0
        # Limbs ease in and out of the swing instead of snapping to attention.
        stride += blend * ((1.0 if walking else 0.0) - stride)
        positions.append(position.copy())
        headings.append(heading)
        phases.append(phase)
        strides.append(stride)
        if not walking:
            pause_left -= dt
            continue
        to_target = target - position
        wanted = math.atan2(to_target[1], to_target[0])
        if np.linalg.norm(to_target) < snap_distance:
            heading = wanted
        else:
            # Turn along the shorter arc.
            heading += blend * math.remainder(wanted - heading, 2 * math.pi)
        step = speed * dt
        position, heading = step_around(position, heading, step, config.occluders)
        position = np.clip(position, 0.3, np.array(config.world_size) - 0.3)
        phase = (phase + step * phase_per_metre) % (2 * math.pi)
        if np.linalg.norm(target - position) < ARRIVAL_RADIUS_M:
            target = _pick_target(rng, config, position, speed, index + 1, others)
            if rng.random() < config.pause_probability:
                pause_left = rng.uniform(*config.pause_s)
    return Track(
        positions=np.array(positions),
        headings=np.array(headings),
        gait_phase=np.array(phases),
        stride=np.array(strides),
    )
