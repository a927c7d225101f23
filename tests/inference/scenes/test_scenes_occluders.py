"""Occluders: drawn in depth order with people, and counted by the visibility rule."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from spoton_inference.scenes.camera import PinholeCamera
from spoton_inference.scenes.config import Occluder, SceneConfig
from spoton_inference.scenes.ground_truth import is_annotated
from spoton_inference.scenes.motion import Track
from spoton_inference.scenes.occluders import render_occluders
from spoton_inference.scenes.people import Person, sample_people
from spoton_inference.scenes.render import Sighting, render_frame

WIDTH, HEIGHT = 320, 240
GREY = 128
PILLAR = Occluder("pillar", (5.0, 5.0), (0.7, 0.7), height_m=4.0, colour=(20, 200, 20))
CRATE = Occluder("box", (5.0, 5.0), (0.6, 1.0), height_m=1.0, colour=(20, 200, 20))


@pytest.fixture
def camera() -> PinholeCamera:
    return PinholeCamera.look_at((0.0, 5.0, 2.5), (8.0, 5.0), hfov_deg=60.0, width=WIDTH, height=HEIGHT)


@pytest.fixture
def person() -> Person:
    person = sample_people(np.random.default_rng(3), SceneConfig(n_people=1, person_height_m=(1.75, 1.75)))[0]
    return replace(person, look=replace(person.look, shirt=(200, 20, 20)))


def _standing_at(person: Person, x: float) -> Person:
    track = Track(np.array([[x, 5.0]]), np.array([np.pi / 2]), np.zeros(1), np.zeros(1))
    return replace(person, track=track)


def _render(camera: PinholeCamera, person: Person, occluder: Occluder | None) -> tuple[np.ndarray, Sighting]:
    backdrop = np.full((HEIGHT, WIDTH, 3), GREY, np.uint8)
    layer = render_occluders(camera, (occluder,)) if occluder else None
    frame, (sighting,) = render_frame(camera, backdrop, [person], 0, np.random.default_rng(0), layer)
    return frame, sighting


def test_pillar_hides_the_person_behind_it(camera: PinholeCamera, person: Person):
    frame, sighting = _render(camera, _standing_at(person, 8.0), PILLAR)
    _, unhidden = _render(camera, _standing_at(person, 8.0), None)
    assert unhidden.visible == 1.0
    assert sighting.visible < 0.5 * unhidden.visible and sighting.in_frame == 1.0
    assert not is_annotated(sighting, SceneConfig())
    # The box is still the whole figure (occluded parts included, as in MOTChallenge).
    assert sighting.box == unhidden.box
    # The pillar is drawn over the person: its green fills the image centre.
    blue, green, red = frame[HEIGHT // 2, WIDTH // 2].astype(int)
    assert green > blue + 50 and green > red + 50


def test_person_in_front_of_a_pillar_covers_it(camera: PinholeCamera, person: Person):
    frame, sighting = _render(camera, _standing_at(person, 3.5), PILLAR)
    assert sighting.visible == sighting.in_frame == 1.0
    x0, y0, x1, y1 = sighting.box
    torso = frame[y0 + (y1 - y0) // 4, (x0 + x1) // 2]
    assert torso[0] > torso[1]  # the blue shirt, not the green pillar


def test_crate_hides_the_legs_only(camera: PinholeCamera, person: Person):
    _, sighting = _render(camera, _standing_at(person, 7.0), CRATE)
    assert 0.3 < sighting.visible < 0.8


def test_occluders_out_of_view_give_no_layer(camera: PinholeCamera):
    assert render_occluders(camera, (replace(PILLAR, centre=(-3.0, 5.0)),)) is None
    assert render_occluders(camera, ()) is None


def test_ground_truth_respects_occluders(knobby_scene, knobby_config: SceneConfig):
    """Occluders appear in the videos and hide people in the ground truth of the generated scene."""
    rows = (knobby_scene / "ground_truth" / "visibility.csv").read_text().splitlines()[1:]
    hidden = [row for row in rows if float(row.split(",")[9]) - float(row.split(",")[10]) > 0.3]
    assert hidden, "someone should be partly hidden by a person or an occluder"
    plan = cv2.imread(str(knobby_scene / "map.png"))
    x, y = (np.array(knobby_config.occluders[0].centre) / knobby_config.metres_per_pixel).astype(int)
    assert plan[y, x].mean() < 150  # the pillar is drawn on the floor plan
