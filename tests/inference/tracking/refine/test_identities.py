"""Grouping all cameras' chains into people."""

import numpy as np

from spoton_inference.tracking.calibration import ReidFit
from spoton_inference.tracking.refine.identities import ChainView, IdentityConfig, cluster_chains

FIT = ReidFit.from_distances(
    np.random.default_rng(0).normal(0.1, 0.04, 500), np.random.default_rng(1).normal(0.5, 0.08, 500)
)


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float64)
    return a / np.linalg.norm(a)


def _chain(cam: str, frames: range, x0: float, vx: float = 0.0, look=None, anchor=None) -> ChainView:
    f = np.array(list(frames))
    xy = np.stack([x0 + vx * (f - f[0]) / 10, np.zeros(len(f))], axis=1)
    return ChainView(cam, f, xy, look, anchor)


def _groups(chains: list[ChainView]) -> list[int]:
    return cluster_chains(chains, IdentityConfig(), fps=10, fit=FIT)


def test_two_views_of_one_spot_are_one_person_and_two_spots_are_two():
    assert _groups(
        [_chain("c1", range(0, 20), 1.0), _chain("c2", range(5, 25), 1.3), _chain("c2", range(0, 20), 6.0)]
    ) == [0, 0, 1]


def test_two_chains_of_one_camera_at_one_time_are_never_one_person():
    grey = _unit([1, 1, 0])
    assert _groups([_chain("c1", range(0, 20), 1.0, look=grey), _chain("c1", range(10, 30), 1.2, look=grey)]) == [0, 1]


def test_a_hand_over_within_walking_reach_is_one_person_beyond_it_two():
    red = _unit([1, 0, 0])
    leaving = _chain("c1", range(0, 20), 0.0, vx=1.0, look=red)  # walks to x = 1.9 m
    near = _chain("c2", range(30, 50), 3.5, look=red)  # 1 s later, 1.6 m on
    far = _chain("c3", range(30, 50), 30.0, look=red)  # 1 s later, 28 m on
    assert _groups([leaving, near, far]) == [0, 0, 1]


def test_people_of_earlier_windows_never_merge_with_each_other():
    grey = _unit([1, 1, 0])
    a = _chain("c1", range(0, 10), 1.0, look=grey, anchor=7)
    b = _chain("c2", range(0, 10), 1.1, look=grey, anchor=9)  # one spot, but given two ids already
    new = _chain("c1", range(12, 20), 1.1, look=grey)
    groups = _groups([a, b, new])
    assert groups[0] != groups[1] and groups[2] in (groups[0], groups[1])


def test_views_that_take_turns_in_time_are_judged_at_their_nearest_moments():
    """c2 sees the person in the gaps of c1's chain (never on the same frame): one person."""
    grey = _unit([1, 1, 0])
    c1 = ChainView("c1", np.array([0, 1, 2, 10, 11, 12]), np.array([[1.0, 0.0]] * 6), grey, None)
    c2 = ChainView("c2", np.array([4, 5, 6, 7]), np.array([[1.2, 0.0]] * 4), grey, None)
    assert _groups([c1, c2]) == [0, 0]


def test_without_a_floor_plan_one_camera_s_chains_close_in_time_are_left_to_its_linking():
    grey = _unit([1, 1, 0])
    nowhere = np.full((10, 2), np.nan)
    a = ChainView("c1", np.arange(0, 10), nowhere, grey, None)
    b = ChainView("c1", np.arange(15, 25), nowhere, grey, None)  # 0.6 s later, looking alike
    far = ChainView("c1", np.arange(100, 110), nowhere, grey, None)  # 9 s later: a re-entry
    assert _groups([a, b]) == [0, 1]
    assert _groups([a, far]) == [0, 0]
