"""A job's figures: progress that never goes back, each step's speed and seconds kept, and an
ETA from the current step's measured rate."""

from __future__ import annotations

import pytest

from spoton_inference.domain.job_progress import PROCESSING_SHARE, RENDER_SPEEDUP_GUESS, JobProgress, StepClock


def test_a_step_rate_counts_from_its_first_frame_and_its_average_from_its_start() -> None:
    clock = StepClock(started=0.0)
    clock.observe(0, 3.0)  # three seconds of start-up: models warming, the decoder opening
    clock.observe(10, 4.0)
    assert clock.rate == 0  # one count: no interval yet
    clock.observe(10, 4.5)  # nothing new: the interval goes on
    clock.observe(30, 5.0)
    assert clock.rate == pytest.approx(20)  # 20 frames in the 1 s after the first ones
    assert clock.average == pytest.approx(6)  # 30 frames in the step's 5 s
    clock.observe(25, 6.0)  # an older count arriving late changes nothing
    assert (clock.frames, clock.rate) == (30, pytest.approx(20))


def test_start_up_does_not_stretch_the_first_estimate() -> None:
    """The old estimate counted start-up as processing time and rendering at processing's speed:
    here it read 38 s left where 8 s of processing and a few of rendering remain."""
    p = JobProgress(total_frames=100, started=0.0)
    assert p.processing(0, 3.0).eta_seconds is None
    p.processing(10, 4.0)
    first = p.processing(20, 5.0)  # 10 frames/s since the first frame
    render = 100 / (10 * RENDER_SPEEDUP_GUESS)
    assert first.eta_seconds == pytest.approx(80 / 10 + render)


def test_rendering_speed_of_earlier_jobs_is_used_until_this_one_is_measured() -> None:
    p = JobProgress(total_frames=100, started=0.0, render_fps_prior=50)
    p.processing(10, 1.0)
    half = p.processing(50, 5.0)  # 50 frames left at 10 frames/s, then 100 to render at 50 frames/s
    assert half.eta_seconds == pytest.approx(7)
    done = p.processing_done(100, now=10.0)
    assert done.eta_seconds == pytest.approx(2)
    p.rendering_started(10.0)
    assert p.rendering(0, 10.5).eta_seconds == pytest.approx(2)
    p.rendering(20, 11.0)
    measured = p.rendering(60, 11.5)  # 40 frames in 0.5 s: 80 frames/s measured
    assert measured.eta_seconds == pytest.approx(0.5)


def test_processing_figures_survive_rendering_and_progress_never_goes_back() -> None:
    p = JobProgress(total_frames=100, started=0.0)
    seen = [p.processing(n, t) for n, t in ((0, 0.5), (40, 2.0), (30, 2.5), (100, 4.0))]
    seen.append(p.processing_done(100, now=4.0))
    p.rendering_started(4.0)
    seen += [p.rendering(n, t) for n, t in ((0, 4.2), (50, 4.5), (100, 5.0))]
    progress = [s.progress for s in seen]
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)
    assert [s.frames_processed for s in seen] == [0, 40, 40, 100, 100, 100, 100, 100]
    assert [s.frames_rendered for s in seen[-3:]] == [0, 50, 100]
    final = seen[-1]
    assert (final.frames_per_second, final.processing_seconds) == (pytest.approx(25), pytest.approx(4))
    assert (final.rendering_frames_per_second, final.rendering_seconds) == (pytest.approx(100), pytest.approx(1))
    assert final.eta_seconds == 0


def test_progress_never_passes_one_when_the_frame_count_was_an_estimate() -> None:
    p = JobProgress(total_frames=10, started=0.0)
    assert p.processing(12, 1.0).progress == pytest.approx(PROCESSING_SHARE)
    p.rendering_started(1.0)
    assert p.rendering(12, 2.0).progress == pytest.approx(1.0)


def test_nothing_is_guessed_before_any_frame() -> None:
    p = JobProgress(total_frames=100, started=0.0)
    first = p.processing(0, 2.0)
    assert (first.eta_seconds, first.frames_per_second, first.processing_seconds) == (None, 0, 2)
    assert p.processing_done(0, now=2.0).eta_seconds is None
