"""Filling a chain's gaps and smoothing its boxes."""

import numpy as np

from spoton_inference.tracking.refine.fill import FillConfig, detection_snapper, fill_chain, smooth_boxes


def test_a_gap_longer_than_the_limit_stays_open():
    frames, boxes = np.array([0, 30]), np.array([[0, 0, 10, 30], [30, 0, 40, 30]], np.float32)
    out = fill_chain(frames, boxes, np.ones(2, np.float32), FillConfig(max_gap_s=1.0, smooth_sigma_s=0), fps=10)
    assert out.frames.tolist() == [0, 30]


def test_a_free_detection_where_the_gap_is_filled_is_used_instead():
    frames, boxes = np.array([0, 2]), np.array([[0, 0, 10, 30], [20, 0, 30, 30]], np.float32)
    weak = {1: (np.array([[11, 1, 21, 31]], np.float32), np.array([0.2], np.float32))}
    out = fill_chain(
        frames, boxes, np.ones(2, np.float32), FillConfig(smooth_sigma_s=0), 10, detection_snapper(weak, 0.5)
    )
    assert out.boxes[1].tolist() == [11, 1, 21, 31]
    assert out.observed.tolist() == [True, True, True] and abs(out.scores[1] - 0.2) < 1e-6


def test_smoothing_takes_out_jitter_but_keeps_a_steady_walk():
    frames = np.arange(40)
    walk = np.stack([5.0 * frames, np.zeros(40), 5.0 * frames + 20, np.full(40, 60.0)], axis=1)
    jitter = np.random.default_rng(0).normal(0, 3, walk.shape)
    smoothed = smooth_boxes(frames, (walk + jitter).astype(np.float32), sigma_frames=2.5)
    assert np.abs(smoothed - walk).mean() < 0.6 * np.abs(jitter).mean()
    assert np.allclose(smooth_boxes(frames, walk.astype(np.float32), 2.5), walk, atol=1e-3)  # ends not pulled in
