"""Drawing people: perspective size, painter's order, visibility and the annotation rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from spoton_inference.scenes.camera import PinholeCamera
from spoton_inference.scenes.config import SceneConfig
from spoton_inference.scenes.ground_truth import is_annotated
from spoton_inference.scenes.motion import Track
from spoton_inference.scenes.people import Person, sample_people
from spoton_inference.scenes.render import Sighting, render_frame

WIDTH, HEIGHT = 640, 480


@pytest.fixture
def camera() -> PinholeCamera:
    return PinholeCamera.look_at((0.0, 5.0, 2.5), (8.0, 5.0), hfov_deg=60.0, width=WIDTH, height=HEIGHT)


@pytest.fixture
def people() -> list[Person]:
    return sample_people(np.random.default_rng(3), SceneConfig(n_people=2, person_height_m=(1.75, 1.75)))


def _standing_at(person: Person, x: float, y: float) -> Person:
    track = Track(np.array([[x, y]]), np.array([np.pi / 2]), np.zeros(1), np.zeros(1))
    return replace(person, track=track)


def _render(camera: PinholeCamera, people: list[Person]) -> tuple[np.ndarray, dict[int, Sighting]]:
    backdrop = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    frame, sightings = render_frame(camera, backdrop, people, 0, np.random.default_rng(0))
    return frame, {sighting.person_id: sighting for sighting in sightings}


def _box_height(sighting: Sighting) -> int:
    return sighting.box[3] - sighting.box[1]


def test_size_shrinks_with_distance(camera: PinholeCamera, people: list[Person]):
    _, near = _render(camera, [_standing_at(people[0], 5.0, 5.0)])
    _, far = _render(camera, [_standing_at(people[0], 10.0, 5.0)])
    assert _box_height(near[1]) / _box_height(far[1]) == pytest.approx(10.0 / 5.0, rel=0.1)


def test_box_is_the_drawn_extent(camera: PinholeCamera, people: list[Person]):
    frame, sightings = _render(camera, [_standing_at(people[0], 6.0, 5.0)])
    drawn_rows, drawn_cols = np.nonzero(np.any(frame != 128, axis=2))
    x0, y0, x1, _ = sightings[people[0].id].box
    # The head's top is the top of the box (within anti-aliasing); the floor shadow
    # may reach wider than the figure, never narrower.
    assert abs(drawn_rows.min() - y0) <= 1
    assert drawn_cols.min() <= x0 + 1 and drawn_cols.max() >= x1 - 2
    assert sightings[people[0].id].in_frame == sightings[people[0].id].visible == 1.0


def test_nearer_person_hides_the_one_behind(camera: PinholeCamera, people: list[Person]):
    front, back = _standing_at(people[0], 5.0, 5.0), _standing_at(people[1], 8.0, 5.05)
    _, sightings = _render(camera, [back, front])  # input order must not matter
    assert sightings[front.id].visible == 1.0
    # Only the head shows over the front person's shoulders.
    assert sightings[back.id].visible < SceneConfig().min_visible_fraction < sightings[back.id].in_frame == 1.0
    assert not is_annotated(sightings[back.id], SceneConfig())


def test_partly_out_of_frame_person_is_clipped(camera: PinholeCamera, people: list[Person]):
    _, sightings = _render(camera, [_standing_at(people[0], 4.0, 7.2)])
    sighting = sightings[people[0].id]
    x0, y0, x1, y1 = sighting.box
    assert 0 <= x0 < x1 <= WIDTH and 0 <= y0 < y1 <= HEIGHT
    assert 0.0 < sighting.in_frame < 1.0


def test_people_behind_the_camera_are_not_seen(camera: PinholeCamera, people: list[Person]):
    _, sightings = _render(camera, [_standing_at(people[0], -3.0, 5.0)])
    assert sightings == {}


@pytest.mark.parametrize(("visible", "height", "expected"), [(0.6, 100, True), (0.4, 100, False), (0.9, 30, False)])
def test_annotation_rule(visible: float, height: int, expected: bool):
    config = SceneConfig(min_visible_fraction=0.5, min_box_height_px=40)
    sighting = Sighting(1, (10, 10, 40, 10 + height), (25.0, 10.0 + height), 1.0, visible)
    assert is_annotated(sighting, config) is expected
