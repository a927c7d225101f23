"""The box motion model: a constant-velocity filter, re-updated along a gap, and its gate."""

import numpy as np

from spoton_inference.tracking.motion import BoxMotion


def _box(x: float, y: float = 0.0) -> np.ndarray:
    return np.array([x, y, x + 40.0, y + 120.0])


def test_it_follows_constant_motion():
    m = BoxMotion.start(_box(0), fps=10)
    for i in range(1, 10):
        m.predict()
        m.update(_box(5.0 * i))
    m.predict()
    assert abs(m.box()[0] - 50.0) < 2.0


def test_after_a_long_gap_it_goes_on_with_the_velocity_the_person_had_over_it():
    """Walking right at 8 px a frame, unseen for 20 frames (7 frames/s) while turning to walk
    down: re-updated along the gap, the filter takes the new heading exactly; a plain update
    after predicting that long overshoots it (by over 2 px a frame, in both axes)."""
    m = BoxMotion.start(_box(0), fps=7)
    for i in range(1, 8):
        m.predict()
        m.update(_box(8.0 * i))
    for _ in range(20):
        m.predict()
    m.update(_box(56.0, 160.0))
    assert np.allclose(m.mean[4:6], [0.0, 8.0], atol=0.3)


def test_the_direction_of_travel_comes_from_observations():
    m = BoxMotion.start(_box(0), fps=10)
    assert m.direction is None
    for i in range(1, 4):
        m.predict()
        m.update(_box(-4.0 * i))
    assert np.allclose(m.direction, [-1.0, 0.0])
