"""Linking one camera's tracklets into chains, with the whole window in view."""

import numpy as np

from spoton_inference.tracking.calibration import ReidFit
from spoton_inference.tracking.refine.linking import LinkConfig, link_tracklets
from spoton_inference.tracking.refine.tracklets import Tracklet

FIT = ReidFit.from_distances(
    np.random.default_rng(0).normal(0.1, 0.04, 500), np.random.default_rng(1).normal(0.5, 0.08, 500)
)


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def _piece(frames: range, x0: float, vx: float, track: int, look: np.ndarray | None = None, y: float = 0.0) -> Tracklet:
    f = np.array(list(frames))
    xs = x0 + vx * (f - f[0])
    boxes = np.stack([xs, np.full(len(f), y), xs + 20, np.full(len(f), y + 60)], axis=1).astype(np.float32)
    looks = [look] * len(f) if look is not None else []
    return Tracklet("c1", f, boxes, np.ones(len(f), np.float32), np.full((len(f), 2), np.nan), track, track, looks)


def _chains(tracklets: list[Tracklet], fit: ReidFit | None = FIT) -> list[list[int]]:
    return sorted([t.online_track for t in chain] for chain in link_tracklets(tracklets, LinkConfig(), fps=10, fit=fit))


def test_a_walker_hidden_for_a_second_is_one_chain_and_a_look_alike_far_off_is_not():
    grey = _unit([1, 1, 1])
    before = _piece(range(0, 10), 0, 5, track=1, look=grey)
    after = _piece(range(20, 30), 100, 5, track=2, look=grey)  # where 5 px a frame brings them
    elsewhere = _piece(range(20, 30), 400, 5, track=3, look=grey)
    assert _chains([before, after, elsewhere]) == [[1, 2], [3]]


def test_a_walker_who_looks_like_someone_else_is_not_linked():
    before = _piece(range(0, 10), 0, 5, track=1, look=_unit([1, 0, 0]))
    after = _piece(range(20, 30), 100, 5, track=2, look=_unit([0, 1, 0]))
    assert _chains([before, after]) == [[1], [2]]


def test_appearance_decides_which_of_two_walkers_came_out_of_an_occlusion():
    """Two people walk behind a pillar side by side; who comes out where is a motion tie."""
    red, blue = _unit([1, 0, 0]), _unit([0, 1, 0])
    tracklets = [
        _piece(range(0, 10), 0, 5, track=1, look=red, y=0),
        _piece(range(0, 10), 0, 5, track=2, look=blue, y=20),
        _piece(range(20, 30), 100, 5, track=3, look=blue, y=0),
        _piece(range(20, 30), 100, 5, track=4, look=red, y=20),
    ]
    assert _chains(tracklets) == [[1, 4], [2, 3]]


def test_pieces_of_one_online_track_stay_linked_when_nothing_speaks_against_it():
    first, second = _piece(range(0, 10), 0, 5, track=1), _piece(range(12, 20), 62, 5, track=1)
    assert _chains([first, second], fit=None) == [[1, 1]]


def test_an_anchor_from_an_earlier_window_only_ever_starts_a_chain():
    grey = _unit([1, 1, 1])
    anchor = _piece(range(0, 5), 0, 5, track=1, look=grey)
    anchor.anchor = (1, 1)
    new = _piece(range(7, 15), 35, 5, track=5, look=grey)
    chains = link_tracklets([new, anchor], LinkConfig(), fps=10, fit=FIT)
    assert [[t.online_track for t in c] for c in chains] == [[1, 5]]
    assert chains[0][0].anchor == (1, 1)
