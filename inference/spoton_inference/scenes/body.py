"""A person's 3-D body in one frame, as a set of convex parts.

Each part is the convex hull of two ellipsoids (a "blob" at each end, aligned with
the person's side/forward/up axes): a limb is two spheres, the torso a flat
ellipsoid at the waist and a wider one at the shoulders. Projected through a
camera, a part's silhouette is the convex hull of its projected sample points, so
perspective and viewing angle come for free.

Proportions are fractions of body height (classic anthropometric ratios); legs
and arms swing with the gait phase and the pelvis bobs so the lower foot stays on
the floor.

Example:
    >>> import numpy as np
    >>> from spoton_inference.scenes.config import SceneConfig
    >>> from spoton_inference.scenes.people import sample_people
    >>> person = sample_people(np.random.default_rng(0), SceneConfig(n_people=1))[0]
    >>> parts = pose_parts(person, frame_index=0)
    >>> top = min(part.samples()[:, 2].min() for part in parts)
    >>> bottom = max(part.samples()[:, 2].max() for part in parts)
    >>> # Head top within the gait's bob of the body height, lower foot on the floor.
    >>> abs(-top - person.height_m) < 0.05, abs(bottom) < 0.005
    (True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spoton_inference.scenes.camera import UP
from spoton_inference.scenes.people import Colour, Person


def _fibonacci_sphere(count: int) -> np.ndarray:
    """``count`` nearly uniform unit vectors ``(count, 3)``."""
    index = np.arange(count) + 0.5
    polar = np.arccos(1 - 2 * index / count)
    azimuth = math.pi * (1 + 5**0.5) * index
    return np.column_stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)])


#: Sample directions of an ellipsoid, as (side, forward, up) coefficients.
UNIT_SPHERE = _fibonacci_sphere(40)

#: Peak thigh swing (radians) at full stride.
LEG_SWING = 0.42
#: Peak knee flexion (radians) during the swing phase.
KNEE_FLEX = 0.9
#: Arm swing relative to the opposite leg.
ARM_SWING = 0.7


@dataclass(frozen=True)
class BodyPart:
    """Convex hull of an ellipsoid at ``start`` and one at ``end`` (world frame).

    Attributes:
        name: Part name (``"head"``, ``"left_thigh"``...).
        start: Centre of the first ellipsoid, shape ``(3,)``.
        end: Centre of the second ellipsoid, shape ``(3,)``.
        radii_start: Semi-axes (side, forward, up) in metres at ``start``.
        radii_end: Semi-axes (side, forward, up) in metres at ``end``.
        axes: Rows are the side, forward and up unit vectors of the person.
        colour: Fill colour (BGR).
        striped: Whether to draw horizontal stripes over it.
    """

    name: str
    start: np.ndarray
    end: np.ndarray
    radii_start: tuple[float, float, float]
    radii_end: tuple[float, float, float]
    axes: np.ndarray
    colour: Colour
    striped: bool = False

    def samples(self) -> np.ndarray:
        """World points ``(2 * len(UNIT_SPHERE), 3)`` on both ellipsoids."""
        return np.concatenate(
            [
                self.start + (UNIT_SPHERE * self.radii_start) @ self.axes,
                self.end + (UNIT_SPHERE * self.radii_end) @ self.axes,
            ]
        )


def _limb_direction(angle: float, forward: np.ndarray, outward: np.ndarray, spread: float = 0.0) -> np.ndarray:
    """Unit vector hanging down, tilted ``angle`` forward and ``spread`` outward."""
    direction = math.cos(angle) * -UP + math.sin(angle) * forward + spread * outward
    return direction / np.linalg.norm(direction)


def _leg_angles(phase: float, stride: float) -> tuple[float, float]:
    """Thigh and shank angles (forward positive) of a leg at gait ``phase``."""
    thigh = LEG_SWING * stride * math.sin(phase)
    # The knee bends while the leg swings forwards (thigh angle increasing).
    flex = KNEE_FLEX * stride * max(0.0, math.cos(phase)) ** 2
    return thigh, thigh - flex


def pose_parts(person: Person, frame_index: int) -> list[BodyPart]:
    """The body parts of ``person`` at 0-based ``frame_index`` (global frame - 1)."""
    track, look, h, g = person.track, person.look, person.height_m, person.girth
    x, y = track.positions[frame_index]
    heading, phase, stride = (
        float(track.headings[frame_index]),
        float(track.gait_phase[frame_index]),
        float(track.stride[frame_index]),
    )
    forward = np.array([math.cos(heading), math.sin(heading), 0.0])
    right = np.cross(forward, UP)
    axes = np.stack([right, forward, UP])
    ground = np.array([x, y, 0.0])

    thigh_len, shank_len, ankle_h = 0.25 * h, 0.24 * h, 0.04 * h
    legs = {"left": _leg_angles(phase, stride), "right": _leg_angles(phase + math.pi, stride)}
    # Pelvis bob: the leg reaching lowest touches the floor.
    drop = max(thigh_len * math.cos(a) + shank_len * math.cos(b) for a, b in legs.values())
    pelvis = ground + UP * (ankle_h + drop)
    shoulder = pelvis + UP * 0.285 * h

    def part(name: str, start: np.ndarray, end: np.ndarray, r0, r1, colour: Colour, striped: bool = False) -> BodyPart:
        return BodyPart(name, start, end, tuple(r0), tuple(r1), axes, colour, striped)

    def ball(radius: float) -> tuple[float, float, float]:
        return (radius, radius, radius)

    parts = []
    for side, sign in (("left", -1.0), ("right", 1.0)):
        thigh_angle, shank_angle = legs[side]
        outward = sign * right
        hip = pelvis + outward * 0.055 * h * g
        knee = hip + thigh_len * _limb_direction(thigh_angle, forward, outward)
        ankle = knee + shank_len * _limb_direction(shank_angle, forward, outward)
        # The foot hangs below the ankle so a planted foot just touches the floor.
        heel = ankle - forward * 0.02 * h - UP * 0.018 * h
        toe = ankle + forward * 0.08 * h - UP * 0.02 * h
        parts += [
            part(f"{side}_thigh", hip, knee, ball(0.058 * h * g), ball(0.044 * h * g), look.trousers),
            part(f"{side}_shank", knee, ankle, ball(0.042 * h * g), ball(0.03 * h), look.trousers),
            part(
                f"{side}_foot", heel, toe, (0.025 * h, 0.03 * h, 0.022 * h), (0.028 * h, 0.03 * h, 0.02 * h), look.shoes
            ),
        ]

        # Arms swing with the opposite leg; the elbow stays slightly bent.
        arm_angle = -ARM_SWING * legs[side][0]
        shoulder_joint = shoulder + outward * 0.115 * h * g
        elbow = shoulder_joint + 0.17 * h * _limb_direction(arm_angle, forward, outward, 0.05)
        wrist = elbow + 0.15 * h * _limb_direction(arm_angle + 0.25 + 0.3 * max(0.0, arm_angle), forward, outward, 0.05)
        forearm_colour = look.shirt if look.long_sleeves else look.skin
        parts += [
            part(f"{side}_upper_arm", shoulder_joint, elbow, ball(0.038 * h * g), ball(0.032 * h * g), look.shirt),
            part(f"{side}_forearm", elbow, wrist, ball(0.03 * h * g), ball(0.024 * h), forearm_colour),
            part(
                f"{side}_hand",
                wrist,
                wrist + 0.04 * h * (wrist - elbow) / np.linalg.norm(wrist - elbow),
                ball(0.02 * h),
                ball(0.017 * h),
                look.skin,
            ),
        ]

    waist = pelvis + UP * 0.07 * h
    chest = shoulder - UP * 0.025 * h
    head = pelvis + UP * 0.395 * h
    parts += [
        part(
            "pelvis",
            pelvis,
            waist,
            (0.11 * h * g, 0.07 * h * g, 0.035 * h),
            (0.105 * h * g, 0.068 * h * g, 0.02 * h),
            look.trousers,
        ),
        part(
            "torso",
            waist,
            chest,
            (0.107 * h * g, 0.068 * h * g, 0.02 * h),
            (0.128 * h * g, 0.075 * h * g, 0.045 * h),
            look.shirt,
            striped=look.stripes,
        ),
        part("neck", shoulder, head - UP * 0.05 * h, ball(0.03 * h), ball(0.028 * h), look.skin),
        part("head", head, head, (0.052 * h, 0.06 * h, 0.068 * h), (0.052 * h, 0.06 * h, 0.068 * h), look.skin),
        part(
            "hair",
            head + UP * 0.012 * h - forward * 0.01 * h,
            head + UP * 0.012 * h - forward * 0.01 * h,
            (0.056 * h, 0.064 * h, 0.064 * h),
            (0.056 * h, 0.064 * h, 0.064 * h),
            look.hair,
        ),
    ]
    return parts
