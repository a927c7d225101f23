"""Re-ID self-calibration: which pairs the video itself labels, and what is fitted from them."""

import numpy as np

from spoton_inference.tracking.appearance import ReidCalibration
from spoton_inference.tracking.calibration import MAX_BROAD_LOG_ODDS, MAX_LOG_ODDS, CalibrationSampler, ReidFit


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float64)
    return a / np.linalg.norm(a)


def _boxes(*xs: float) -> np.ndarray:
    return np.array([[x, 0, x + 40, 100] for x in xs], np.float32)


def test_an_isolated_track_gives_same_pairs_and_two_tracks_apart_give_different_ones():
    s = CalibrationSampler()
    a, b = _unit([1, 0.1]), _unit([0, 1])
    for f in range(5):
        boxes = _boxes(0, 200)
        s.add_frame("c1", f, [1, 2], boxes, [a, b], boxes)
    same, different = s.pairs
    assert same == 2 * 4  # each track, each new crop after its first
    assert different == 5  # one pair a frame
    fit = s.fit(ReidCalibration(0.3, 0.7), min_pairs=5)
    assert fit.calibration.same < 1e-6
    assert abs(fit.calibration.different - (1 - float(a @ b))) < 1e-6


def test_overlapping_people_give_no_pairs():
    """Touching boxes may be one person detected twice, or two people swapped by the tracker."""
    s = CalibrationSampler()
    for f in range(5):
        boxes = _boxes(0, 20)  # overlapping
        s.add_frame("c1", f, [1, 2], boxes, [_unit([1, 0]), _unit([0, 1])], boxes)
    assert s.pairs == (0, 0)


def test_a_crop_after_a_crowded_moment_starts_over():
    s = CalibrationSampler()
    a = _unit([1, 0])
    s.add_frame("c1", 0, [1], _boxes(0), [a], _boxes(0))
    # someone passes in front: the track's box overlaps another detection
    s.add_frame("c1", 1, [1], _boxes(0), [None], _boxes(0, 10))
    s.add_frame("c1", 2, [1], _boxes(0), [a], _boxes(0))
    assert s.pairs[0] == 0  # the crop before the crowd is not paired with the one after
    s.add_frame("c1", 3, [1], _boxes(0), [a], _boxes(0))
    assert s.pairs[0] == 1


def test_each_kind_comes_from_its_own_pairs_once_it_has_enough():
    prior = ReidCalibration(0.2, 0.6)
    rng = np.random.default_rng(1)
    s = CalibrationSampler()
    s._same.values = list(rng.normal(0.02, 0.005, 500))
    s._different.values = list(rng.normal(0.3, 0.01, 10))  # too few: the prior's 0.6 stands
    fit = s.fit(prior)
    assert abs(fit.calibration.same - 0.02) < 0.002 and fit.calibration.different == 0.6
    s._different.values = list(rng.normal(0.3, 0.01, 500))
    fit = s.fit(prior)
    assert abs(fit.calibration.same - 0.02) < 0.002 and abs(fit.calibration.different - 0.3) < 0.002


def test_a_mix_that_tells_nothing_apart_leaves_the_prior_whole():
    """A dropped-in embedder on another scale: its different pairs (0.05) are below the
    prior's same distance (0.2) while its same pairs are still too few."""
    prior = ReidCalibration(0.2, 0.6)
    s = CalibrationSampler()
    s._same.values = [0.02] * 10
    s._different.values = [0.05] * 500
    assert s.fit(prior) == ReidFit.prior(prior)


def test_log_odds_say_same_near_same_distances_and_are_capped():
    fit = ReidFit.from_distances(
        np.random.default_rng(0).normal(0.1, 0.03, 400), np.random.default_rng(1).normal(0.4, 0.05, 400)
    )
    assert fit.log_odds(0.1) > 0 > fit.log_odds(0.4)
    assert fit.log_odds(1.5) == -MAX_LOG_ODDS
    assert fit.separation > 5


def test_an_embedder_that_tells_nothing_apart_keeps_the_prior():
    prior = ReidCalibration(0.2, 0.6)
    s = CalibrationSampler()
    s._same.values = [0.5] * 500
    s._different.values = [0.4] * 500
    assert s.fit(prior) == ReidFit.prior(prior)


def test_across_cameras_appearance_speaks_gently_and_never_past_its_cap():
    """Seconds-apart crops fit tight normals; two cameras' views of one person differ more. A
    distance midway is "certainly different" to the normals, undecided to the broad odds."""
    fit = ReidFit.from_distances(
        np.random.default_rng(0).normal(0.06, 0.03, 400), np.random.default_rng(1).normal(0.48, 0.08, 400)
    )
    midway = (fit.calibration.same + fit.calibration.different) / 2
    assert fit.log_odds(midway) < -3
    assert abs(float(fit.broad_log_odds(midway))) < 0.01
    assert fit.broad_log_odds(0.0) == MAX_BROAD_LOG_ODDS and fit.broad_log_odds(1.0) == -MAX_BROAD_LOG_ODDS
