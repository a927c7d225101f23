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
from spoton_inference.scenes.people import Colour, Look, Person


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
#: Thigh and shank lengths and ankle height, as fractions of body height.
THIGH, SHANK, ANKLE = 0.25, 0.24, 0.04


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


Radii = tuple[float, float, float]
"""Ellipsoid semi-axes (side, forward, up) in metres."""


@dataclass(frozen=True)
class _BodyFrame:
    """Builds parts in one person's frame; sizes are given as fractions of height.

    Attributes:
        axes: Rows are the person's right, forward and up unit vectors.
        height: Body height in metres.
        girth: Width scale of the body (side and forward semi-axes of flesh).
    """

    axes: np.ndarray
    height: float
    girth: float

    def blob(self, side: float, forward: float, up: float, girth: bool = True) -> Radii:
        """Semi-axes from height fractions; ``girth`` widens side and forward ones."""
        width = self.height * (self.girth if girth else 1.0)
        return (side * width, forward * width, up * self.height)

    def ball(self, radius: float, girth: bool = True) -> Radii:
        """A sphere of ``radius`` height fractions (scaled by girth in all axes)."""
        scaled = radius * self.height * (self.girth if girth else 1.0)
        return (scaled, scaled, scaled)

    def part(
        self,
        name: str,
        start: np.ndarray,
        end: np.ndarray,
        radii: tuple[Radii, Radii],
        colour: Colour,
        striped: bool = False,
    ) -> BodyPart:
        """A part from ``start`` to ``end`` with ``radii`` at either end."""
        return BodyPart(name, start, end, radii[0], radii[1], self.axes, colour, striped)


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


def _leg(body: _BodyFrame, look: Look, side: str, hip: np.ndarray, angles: tuple[float, float]) -> list[BodyPart]:
    h, (right, forward, _) = body.height, body.axes
    outward = right if side == "right" else -right
    knee = hip + THIGH * h * _limb_direction(angles[0], forward, outward)
    ankle = knee + SHANK * h * _limb_direction(angles[1], forward, outward)
    # The foot hangs below the ankle so a planted foot just touches the floor.
    heel = ankle - forward * 0.02 * h - UP * 0.018 * h
    toe = ankle + forward * 0.08 * h - UP * 0.02 * h
    return [
        body.part(f"{side}_thigh", hip, knee, (body.ball(0.058), body.ball(0.044)), look.trousers),
        body.part(f"{side}_shank", knee, ankle, (body.ball(0.042), body.ball(0.03, girth=False)), look.trousers),
        body.part(
            f"{side}_foot",
            heel,
            toe,
            (body.blob(0.025, 0.03, 0.022, girth=False), body.blob(0.028, 0.03, 0.02, girth=False)),
            look.shoes,
        ),
    ]


def _arm(body: _BodyFrame, look: Look, side: str, shoulder: np.ndarray, swing: float) -> list[BodyPart]:
    h, (right, forward, _) = body.height, body.axes
    outward = right if side == "right" else -right
    joint = shoulder + outward * 0.115 * h * body.girth
    elbow = joint + 0.17 * h * _limb_direction(swing, forward, outward, 0.05)
    # The elbow stays slightly bent, more so when the arm swings forwards.
    wrist = elbow + 0.15 * h * _limb_direction(swing + 0.25 + 0.3 * max(0.0, swing), forward, outward, 0.05)
    fingers = wrist + 0.04 * h * (wrist - elbow) / np.linalg.norm(wrist - elbow)
    forearm_colour = look.shirt if look.long_sleeves else look.skin
    return [
        body.part(f"{side}_upper_arm", joint, elbow, (body.ball(0.038), body.ball(0.032)), look.shirt),
        body.part(f"{side}_forearm", elbow, wrist, (body.ball(0.03), body.ball(0.024, girth=False)), forearm_colour),
        body.part(
            f"{side}_hand", wrist, fingers, (body.ball(0.02, girth=False), body.ball(0.017, girth=False)), look.skin
        ),
    ]


def _trunk_and_head(body: _BodyFrame, look: Look, pelvis: np.ndarray, shoulder: np.ndarray) -> list[BodyPart]:
    h, forward = body.height, body.axes[1]
    waist = pelvis + UP * 0.07 * h
    chest = shoulder - UP * 0.025 * h
    head = pelvis + UP * 0.395 * h
    head_radii = body.blob(0.052, 0.06, 0.068, girth=False)
    # Hair: a slightly larger ellipsoid, up and back, so it caps the head and covers its back.
    hair = head + UP * 0.012 * h - forward * 0.01 * h
    hair_radii = body.blob(0.056, 0.064, 0.064, girth=False)
    return [
        body.part(
            "pelvis", pelvis, waist, (body.blob(0.11, 0.07, 0.035), body.blob(0.105, 0.068, 0.02)), look.trousers
        ),
        body.part(
            "torso",
            waist,
            chest,
            (body.blob(0.107, 0.068, 0.02), body.blob(0.128, 0.075, 0.045)),
            look.shirt,
            striped=look.stripes,
        ),
        body.part(
            "neck",
            shoulder,
            head - UP * 0.05 * h,
            (body.ball(0.03, girth=False), body.ball(0.028, girth=False)),
            look.skin,
        ),
        body.part("head", head, head, (head_radii, head_radii), look.skin),
        body.part("hair", hair, hair, (hair_radii, hair_radii), look.hair),
    ]


def pose_parts(person: Person, frame_index: int) -> list[BodyPart]:
    """The body parts of ``person`` at 0-based ``frame_index`` (global frame - 1)."""
    track, h = person.track, person.height_m
    heading = float(track.headings[frame_index])
    phase, stride = float(track.gait_phase[frame_index]), float(track.stride[frame_index])
    forward = np.array([math.cos(heading), math.sin(heading), 0.0])
    right = np.cross(forward, UP)
    body = _BodyFrame(np.stack([right, forward, UP]), h, person.girth)

    legs = {"left": _leg_angles(phase, stride), "right": _leg_angles(phase + math.pi, stride)}
    # Pelvis bob: the leg reaching lowest touches the floor.
    drop = max(THIGH * h * math.cos(thigh) + SHANK * h * math.cos(shank) for thigh, shank in legs.values())
    pelvis = np.array([*track.positions[frame_index], 0.0]) + UP * (ANKLE * h + drop)
    shoulder = pelvis + UP * 0.285 * h

    parts = []
    for side, sign in (("left", -1.0), ("right", 1.0)):
        hip = pelvis + sign * right * 0.055 * h * person.girth
        parts += _leg(body, person.look, side, hip, legs[side])
        # Arms swing with the opposite leg.
        parts += _arm(body, person.look, side, shoulder, -ARM_SWING * legs[side][0])
    return parts + _trunk_and_head(body, person.look, pelvis, shoulder)
