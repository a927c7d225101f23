"""A job's figures over its two frame-by-frame steps: progress, speeds, durations, time left.

Processing (detect, track, re-identify) fills the first ``PROCESSING_SHARE`` of the bar and
rendering the annotated video the rest; the bar never goes back. Each step keeps its own
figures, and keeps them once it is over: frames done, seconds spent, and its speed, which is
frames over seconds (start-up included), so a finished job says how fast each step really was.

The time left uses the measured rate of the current step, counted from its first frame, so
start-up (models warming, the decoder opening) does not make the first estimate long. The step
still to come, rendering, is estimated from what is known: this job's own rendering once
measured, else the speed earlier jobs rendered at (``render_fps_prior``), else, for the very
first job, processing's speed times ``RENDER_SPEEDUP_GUESS``. This module once counted start-up
as processing time and rendering at processing's speed (rendering runs about five times
faster): the first estimate of a real upload read 108 s for a job that took 70 s, and for
vtest.avi 329 s where 133 s were left (now 126 s).

Example (10 frames/s of processing, rendering guessed 4 times faster until measured):
    >>> p = JobProgress(total_frames=100, started=0.0)
    >>> p.processing(0, now=1.0).eta_seconds is None  # starting up: nothing measured
    True
    >>> p.processing(10, now=2.0).eta_seconds is None  # the first frames: the rate counts from here
    True
    >>> s = p.processing(50, now=6.0)
    >>> s.progress, s.frames_per_second, s.eta_seconds  # 50 left at 10/s, 100 to render at 40/s
    (0.45, 8.33, 7.5)
    >>> s = p.processing_done(100, now=11.0)
    >>> s.frames_per_second, s.processing_seconds, s.eta_seconds
    (9.09, 11.0, 2.5)
    >>> p.rendering_started(11.0)
    >>> s = p.rendering(50, now=11.5)
    >>> s.frames_processed, s.frames_rendered, s.progress, s.frames_per_second
    (100, 50, 0.95, 9.09)
    >>> s = p.rendering(100, now=12.0)
    >>> s.rendering_frames_per_second, s.rendering_seconds, s.progress, s.eta_seconds
    (100.0, 1.0, 1.0, 0.0)
"""

from __future__ import annotations

import dataclasses

PROCESSING_SHARE = 0.9
# Rendering speed over processing speed, assumed until a job's rendering has been measured; it
# only shapes the very first job's estimates. Measured: vtest.avi (768x576) rendered at 36.7
# frames/s against 7.0 tracked (tests/integration/test_job_figures.py); a little under errs long.
RENDER_SPEEDUP_GUESS = 4.0


class StepClock:
    """One step's frames over time: seconds since it started, and its rate since its first frame.

    >>> c = StepClock(started=0.0)
    >>> c.observe(0, 2.0); c.rate  # starting up: no frame yet
    0.0
    >>> c.observe(5, 3.0); c.rate  # the first frames: the rate is measured from here
    0.0
    >>> c.observe(25, 5.0); c.rate, c.average
    (10.0, 5.0)
    """

    def __init__(self, started: float) -> None:
        self.started = started
        self.frames = 0
        self.seconds = 0.0
        # (frames, time) at the first count above 0, and at the newest count that grew.
        self._first: tuple[int, float] | None = None
        self._latest: tuple[int, float] | None = None

    def observe(self, frames: int, now: float) -> None:
        """``frames`` were done in all by ``now`` (seconds, the clock ``started`` is on)."""
        grew = frames > self.frames
        self.frames = max(self.frames, frames)
        self.seconds = max(self.seconds, now - self.started)
        if grew:
            self._latest = (self.frames, now)
            self._first = self._first or self._latest

    @property
    def rate(self) -> float:
        """Frames per second since the first frame; 0 until two counts are apart."""
        if self._first is None or self._latest is None:
            return 0.0
        frames, seconds = self._latest[0] - self._first[0], self._latest[1] - self._first[1]
        return frames / seconds if seconds > 0 else 0.0

    @property
    def average(self) -> float:
        """Frames over the step's seconds so far, start-up included; 0 before the first frame."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """What a job reports: the names follow ``spoton.v1.Job``."""

    progress: float
    # None until a rate has been measured; 0 once the last step is done.
    eta_seconds: float | None
    # Processing speed: frames_processed / processing_seconds.
    frames_per_second: float = 0.0
    rendering_frames_per_second: float = 0.0
    frames_processed: int = 0
    frames_rendered: int = 0
    processing_seconds: float = 0.0
    rendering_seconds: float = 0.0


class JobProgress:
    """The figures of one run of a job. ``started`` is when processing began, on the clock the
    processing counts are timed by (the job times them by its task's record, which says when
    each count was written); rendering has a clock of its own (:meth:`rendering_started`)."""

    def __init__(self, total_frames: int, *, started: float, render_fps_prior: float = 0.0) -> None:
        self.total_frames = max(total_frames, 1)
        self._processing = StepClock(started)
        self._rendering: StepClock | None = None
        self._render_prior = render_fps_prior
        self._progress = 0.0

    def processing(self, frames: int, now: float) -> Snapshot:
        self._processing.observe(frames, now)
        rate = self._processing.rate
        eta = None
        if rate > 0:
            eta = max(self.total_frames - self._processing.frames, 0) / rate + self._render_estimate(rate)
        return self._snapshot(PROCESSING_SHARE * self._done(self._processing.frames), eta)

    def processing_done(self, frames: int, now: float) -> Snapshot:
        """Processing is over: ``frames`` done by ``now``; what is left is rendering."""
        self._processing.observe(frames, now)
        speed = self._processing.rate or self._processing.average
        eta = self._render_estimate(speed) if speed > 0 else None
        return self._snapshot(PROCESSING_SHARE * self._done(self._processing.frames), eta)

    def rendering_started(self, now: float) -> None:
        """Rendering begins now (processing's seconds ended before)."""
        self._rendering = StepClock(now)

    def rendering(self, frames: int, now: float) -> Snapshot:
        if self._rendering is None:
            self.rendering_started(now)
        assert self._rendering is not None
        self._rendering.observe(frames, now)
        left = max(self.total_frames - self._rendering.frames, 0)
        rate = self._rendering.rate
        if left == 0:
            eta: float | None = 0.0
        elif rate > 0:
            eta = left / rate
        else:  # not measured yet: the estimate made while processing, for the frames left
            guess = self._render_estimate(self._processing.rate or self._processing.average)
            eta = guess * left / self.total_frames if guess else None
        share = 1 - PROCESSING_SHARE
        return self._snapshot(PROCESSING_SHARE + share * self._done(self._rendering.frames), eta)

    def _render_estimate(self, processing_rate: float) -> float:
        """Seconds to render every frame, from what is known before rendering is measured."""
        speed = self._render_prior or processing_rate * RENDER_SPEEDUP_GUESS
        return self.total_frames / speed if speed > 0 else 0.0

    def _done(self, frames: int) -> float:
        return min(frames / self.total_frames, 1.0)

    def _snapshot(self, progress: float, eta: float | None) -> Snapshot:
        self._progress = max(self._progress, round(progress, 4))
        rendering = self._rendering
        return Snapshot(
            progress=self._progress,
            eta_seconds=None if eta is None else round(eta, 1),
            frames_per_second=round(self._processing.average, 2),
            rendering_frames_per_second=0.0 if rendering is None else round(rendering.average, 2),
            frames_processed=self._processing.frames,
            frames_rendered=0 if rendering is None else rendering.frames,
            processing_seconds=round(self._processing.seconds, 3),
            rendering_seconds=0.0 if rendering is None else round(rendering.seconds, 3),
        )
