"""Job progress and its ETA, learned from the measured frame rate."""

from __future__ import annotations

import pytest

from spoton_inference.core.job_progress import PROCESSING_SHARE, FrameRate, JobProgress


def test_the_frame_rate_is_a_moving_average_over_intervals_with_progress() -> None:
    rate = FrameRate(alpha=0.5)
    rate.observe(0, 0.0)
    rate.observe(0, 1.0)  # nothing done yet: the interval goes on
    assert rate.fps == 0
    rate.observe(20, 2.0)  # 20 frames in 2 s
    assert rate.fps == pytest.approx(10)
    rate.observe(40, 3.0)  # 20 frames in 1 s
    assert rate.fps == pytest.approx(15)


def test_eta_counts_the_frames_left_in_every_step() -> None:
    p = JobProgress(total_frames=100)
    assert p.processing(0, 0.0).eta_seconds is None
    half = p.processing(50, 5.0)  # 10 fps: 50 frames to process, then 100 to render at (as yet) 10 fps
    assert half.progress == pytest.approx(PROCESSING_SHARE / 2) and half.eta_seconds == pytest.approx(15)
    done = p.processing(100, 10.0)
    assert done.progress == pytest.approx(PROCESSING_SHARE) and done.eta_seconds == pytest.approx(10)
    p.rendering(0, 10.0)
    rendering = p.rendering(50, 11.0)  # rendering measured at 50 fps
    assert rendering.frames_per_second == pytest.approx(50) and rendering.eta_seconds == pytest.approx(1)
    assert rendering.progress == pytest.approx(PROCESSING_SHARE + (1 - PROCESSING_SHARE) / 2)
    assert p.rendering(100, 12.0).progress == pytest.approx(1)


def test_progress_never_passes_one_when_the_frame_count_was_an_estimate() -> None:
    p = JobProgress(total_frames=10)
    p.processing(0, 0.0)
    assert p.processing(12, 1.0).progress == pytest.approx(PROCESSING_SHARE)


def test_rendering_speed_from_earlier_jobs_replaces_the_guess_until_measured() -> None:
    p = JobProgress(total_frames=100, render_fps_prior=50)
    p.processing(0, 0.0)
    half = p.processing(50, 5.0)  # 50 frames left at 10 fps, then 100 to render at 50 fps
    assert half.eta_seconds == pytest.approx(7)
    assert p.rendering(0, 10.0).eta_seconds == pytest.approx(2)
