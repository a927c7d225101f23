"""A job's progress over its two frame-by-frame steps, and the time left.

Processing (detect, track, re-identify) fills the first ``PROCESSING_SHARE`` of the bar and
rendering the annotated video the rest. The time left comes from frame rates measured as the
job runs, each an exponentially weighted moving average, so it follows a machine that speeds
up or slows down. Until this job's rendering has been measured, its speed is taken from
earlier jobs (``render_fps_prior``), or, for the first job, assumed to be processing's, which
errs on the long side (rendering is the cheaper step).

Example:
    >>> p = JobProgress(total_frames=100)
    >>> p.processing(0, now=0.0).eta_seconds is None
    True
    >>> s = p.processing(50, now=5.0)
    >>> s.progress, s.frames_per_second, s.eta_seconds
    (0.45, 10.0, 15.0)
"""

from __future__ import annotations

import dataclasses

PROCESSING_SHARE = 0.9


class FrameRate:
    """Frames per second, a moving average over the intervals in which frames were done."""

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self.fps = 0.0
        self._last: tuple[int, float] | None = None

    def observe(self, frames: int, now: float) -> None:
        """``frames`` were done in all by time ``now`` (seconds, any monotonic clock)."""
        if self._last is None:
            self._last = (frames, now)
            return
        done, dt = frames - self._last[0], now - self._last[1]
        if done <= 0 or dt <= 0:
            return  # nothing new: the interval goes on until frames are done
        rate = done / dt
        self.fps = rate if self.fps == 0 else self.alpha * rate + (1 - self.alpha) * self.fps
        self._last = (frames, now)


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    progress: float
    # None until a frame rate has been measured.
    eta_seconds: float | None
    frames_per_second: float


class JobProgress:
    def __init__(self, total_frames: int, render_fps_prior: float = 0.0) -> None:
        self.total_frames = max(total_frames, 1)
        self._processing = FrameRate()
        self._rendering = FrameRate()
        self._render_prior = render_fps_prior

    @property
    def rendering_fps(self) -> float:
        """This job's measured rendering speed; 0 until measured."""
        return self._rendering.fps

    def processing(self, frames: int, now: float) -> Snapshot:
        self._processing.observe(frames, now)
        fps = self._processing.fps
        done = min(frames / self.total_frames, 1.0)
        eta = None
        if fps > 0:
            left = max(self.total_frames - frames, 0)
            eta = left / fps + self.total_frames / (self._rendering.fps or self._render_prior or fps)
        return Snapshot(round(PROCESSING_SHARE * done, 4), _round(eta), round(fps, 2))

    def rendering(self, frames: int, now: float) -> Snapshot:
        self._rendering.observe(frames, now)
        fps = self._rendering.fps or self._render_prior or self._processing.fps
        done = min(frames / self.total_frames, 1.0)
        eta = max(self.total_frames - frames, 0) / fps if fps > 0 else None
        return Snapshot(round(PROCESSING_SHARE + (1 - PROCESSING_SHARE) * done, 4), _round(eta), round(fps, 2))


def _round(eta: float | None) -> float | None:
    return None if eta is None else round(eta, 1)
