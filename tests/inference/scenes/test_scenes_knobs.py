"""Difficulty knobs of the people and their paths: similar clothes, crossings, walking round occluders."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from spoton_inference.scenes.config import Occluder, SceneConfig
from spoton_inference.scenes.crossing import crossing_waypoint
from spoton_inference.scenes.motion import Track
from spoton_inference.scenes.obstacles import CLEARANCE_M
from spoton_inference.scenes.people import SKIN_HUES, Person, sample_people


def _people(seed: int = 0, **knobs: object) -> list[Person]:
    return sample_people(np.random.default_rng(seed), SceneConfig(n_people=10, **knobs))


def _spread(colours: list[tuple[int, int, int]]) -> float:
    """Mean distance (grey levels) of BGR colours from their mean."""
    array = np.array(colours, float)
    return float(np.linalg.norm(array - array.mean(axis=0), axis=1).mean())


def test_similar_clothes_narrow_the_colour_spread():
    spreads = {
        similarity: (
            _spread([p.look.shirt for p in _people(similar_clothes=similarity)]),
            _spread([p.look.trousers for p in _people(similar_clothes=similarity)]),
        )
        for similarity in (0.0, 0.5, 0.9)
    }
    shirts, trousers = zip(*spreads.values(), strict=True)
    assert shirts[0] > shirts[1] > shirts[2] and shirts[2] < 0.2 * shirts[0]
    assert trousers[0] > trousers[1] > trousers[2]
    alike = _people(similar_clothes=1.0)
    assert len({p.look.shirt for p in alike}) == len({p.look.trousers for p in alike}) == 1
    assert not any(p.look.stripes for p in alike)
    # Skin and hair still differ: a team in uniform, not clones.
    assert len({(p.look.skin, p.look.hair) for p in alike}) > 1


@pytest.mark.parametrize("similarity", [0.0, 0.5, 1.0])
def test_shirts_stay_out_of_the_skin_hues(similarity: float):
    for seed in range(5):
        for person in _people(seed, similar_clothes=similarity):
            blue, green, red = (channel / 255 for channel in person.look.shirt)
            hue = colorsys.rgb_to_hsv(red, green, blue)[0]
            assert not SKIN_HUES[0] + 0.005 < hue < SKIN_HUES[1] - 0.005


def _encounters(people: list[Person], within_m: float = 1.0) -> int:
    """Times two people come within ``within_m`` of each other (each approach counted once)."""
    positions = np.stack([person.track.positions for person in people])
    close = np.linalg.norm(positions[:, None] - positions[None], axis=-1) < within_m
    first, second = np.triu_indices(len(people), 1)
    pairs = close[first, second].astype(int)
    return int(pairs[:, 0].sum() + (np.diff(pairs, axis=1) == 1).sum())


def test_crossings_bring_people_together_more_often():
    plain = sum(_encounters(_people(seed)) for seed in range(3))
    crossing = sum(_encounters(_people(seed, crossing_fraction=1.0)) for seed in range(3))
    assert crossing > 1.5 * plain


def _walking_along_x(y: float, frames: int = 100) -> Track:
    xs = 2.0 + 0.12 * np.arange(frames)
    return Track(np.column_stack([xs, np.full(frames, y)]), np.zeros(frames), np.zeros(frames), np.ones(frames))


def test_crossing_waypoint_leads_through_the_others_path_in_time():
    config = SceneConfig()
    other, start, speed = _walking_along_x(4.5), np.array([7.0, 1.0]), 1.2
    target = crossing_waypoint(np.random.default_rng(1), config, start, speed, 0, [other])
    assert target is not None and target[1] > 4.5
    # Walking straight at its speed, the walker passes within a metre of the other.
    direction = (target - start) / np.linalg.norm(target - start)
    frames = np.arange(100)
    walker = start + np.minimum(speed * frames / config.fps, np.linalg.norm(target - start))[:, None] * direction
    assert np.linalg.norm(walker - other.positions, axis=1).min() < 1.0


def test_no_crossing_when_nobody_can_be_met_in_time():
    config = SceneConfig()
    # The other walks along the far side of the hall: too far to meet within the look-ahead.
    target = crossing_waypoint(np.random.default_rng(0), config, np.array([13.0, 8.0]), 1.0, 0, [_walking_along_x(1.0)])
    assert target is None


def test_walkers_go_round_occluders():
    occluders = (
        Occluder("pillar", (5.0, 4.5), (0.6, 0.6), height_m=4.0),
        Occluder("box", (9.0, 4.5), (2.0, 0.6)),
    )
    people = sample_people(np.random.default_rng(0), SceneConfig(n_people=12, occluders=occluders))
    positions = np.concatenate([person.track.positions for person in people])
    for occluder in occluders:
        distance = np.linalg.norm(positions - occluder.centre, axis=1)
        assert distance.min() >= occluder.radius_m + CLEARANCE_M - 1e-9
    # People still walk everywhere else, including both sides of the obstacles.
    assert (positions[:, 1] < 3.0).any() and (positions[:, 1] > 6.0).any()


@pytest.mark.parametrize(
    "knobs",
    [
        {"crossing_fraction": 1.5},
        {"similar_clothes": -0.1},
        {"frame_drop_probability": 1.2},
        {"light_level": 0.0},
    ],
)
def test_knobs_out_of_range_are_refused(knobs: dict[str, float]):
    with pytest.raises(ValueError, match=next(iter(knobs))):
        SceneConfig(**knobs)


def test_unknown_occluder_shape_is_refused():
    with pytest.raises(ValueError, match="shape"):
        Occluder("sphere", (1.0, 1.0), (1.0, 1.0))
