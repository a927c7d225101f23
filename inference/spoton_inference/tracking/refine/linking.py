"""Linking one camera's tracklets into chains, one per person, with the whole window in view.

Each tracklet may hand over to at most one later tracklet. Every possible hand-over, from the
end (*tail*) of one to the start (*head*) of another that begins after it, gets a score,
the sum of what each cue says for "the same person":

- motion: each side's velocity at its end, carried across the gap, must bring it to the
  other side within an error that grows with the gap (``base_error`` box heights plus
  ``error_per_s`` a second); the closer, the higher the score;
- appearance: the log-likelihood ratio of the two tracklets' mean embeddings being one
  person (:meth:`~spoton_inference.tracking.calibration.ReidFit.log_odds`), when both have any;
- continuity: a bonus when both pieces were one online track, the online tracker's vote;
- time: a penalty per second of gap.

The hand-overs that maximise the total score, among those scoring above zero, are chosen at
once (``linear_sum_assignment`` over tails x heads): the min-cost path cover of the
tracklet graph. This is the tracklet stitching of offline trackers (StrongSORT's AFLink
links on motion alone; appearance joins it here through the calibrated log-odds).

Example:
    >>> import numpy as np
    >>> from spoton_inference.tracking.refine.tracklets import Tracklet
    >>> from spoton_inference.tracking.calibration import ReidFit
    >>> from spoton_inference.tracking.appearance import ReidCalibration
    >>> def piece(frames, x0, track):
    ...     f = np.array(frames)
    ...     boxes = np.array([[x0 + 5 * (i - f[0]), 0, x0 + 5 * (i - f[0]) + 20, 60] for i in f], np.float32)
    ...     looks = [np.array([1.0, 0.0])] * len(f)  # everyone looks alike: motion decides
    ...     return Tracklet("c1", f, boxes, np.ones(len(f)), np.full((len(f), 2), np.nan), track, track, looks)
    >>> a, b, c = piece(range(0, 10), 0, 1), piece(range(14, 20), 70, 2), piece(range(14, 20), 300, 3)
    >>> fit = ReidFit.prior(ReidCalibration(0.1, 0.5))
    >>> chains = link_tracklets([a, b, c], LinkConfig(), fps=10, fit=fit)
    >>> [[t.online_track for t in chain] for chain in chains]
    [[1, 2], [3]]
"""

from __future__ import annotations

import bisect
import dataclasses

import numpy as np
from scipy.optimize import linear_sum_assignment

from spoton_inference.tracking.boxes import heights
from spoton_inference.tracking.calibration import ReidFit
from spoton_inference.tracking.refine.tracklets import Tracklet

_FORBIDDEN = 1e6


@dataclasses.dataclass(frozen=True, slots=True)
class LinkConfig:
    # The longest gap bridged, in seconds.
    max_gap_s: float = 4.0
    # Motion: allowed error of the carried-over position, in box heights: base plus per second of gap.
    base_error: float = 0.5
    error_per_s: float = 0.6
    # Without a velocity on either side, a person may have walked this far per second (box heights).
    walk_per_s: float = 1.0
    # Sizes may differ by this ratio (plus per_s a second: people walk towards the camera).
    max_height_ratio: float = 1.3
    height_ratio_per_s: float = 0.1
    # Frames at each end that give its position and velocity.
    end_span: int = 5
    # A carried-over error beyond this many allowed errors rules the hand-over out.
    max_error: float = 3.0
    # The score is a log-odds of "one person": a base (most candidate hand-overs are not),
    # minus motion_weight per allowed error, plus appearance_weight x the appearance
    # log-odds, plus the continuity bonus, minus a penalty per second of gap. Weights from a
    # logistic regression over the candidate hand-overs of the real and the validation
    # sequences (bench/README.md, "Refinement").
    base_log_odds: float = 0.0
    motion_weight: float = 1.2
    appearance_weight: float = 0.6
    continuity_bonus: float = 1.0
    gap_penalty_per_s: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class _End:
    frame: int
    position: np.ndarray  # box centre, pixels
    velocity: np.ndarray | None  # pixels per frame
    height: float


def link_tracklets(
    tracklets: list[Tracklet], config: LinkConfig, fps: float, fit: ReidFit | None
) -> list[list[Tracklet]]:
    """Chains of tracklets, each in time order. Anchored tracklets only ever start a chain."""
    if not tracklets:
        return []
    scores = link_scores(tracklets, config, fps, fit)
    cost = np.where(scores > 0, -scores, _FORBIDDEN)
    rows, cols = linear_sum_assignment(cost)
    successor = {int(r): int(c) for r, c in zip(rows, cols, strict=True) if cost[r, c] < _FORBIDDEN}
    has_predecessor = set(successor.values())
    chains = []
    for start in range(len(tracklets)):
        if start in has_predecessor:
            continue
        chain, at = [tracklets[start]], start
        while at in successor:
            at = successor[at]
            chain.append(tracklets[at])
        chains.append(chain)
    return chains


def link_scores(tracklets: list[Tracklet], config: LinkConfig, fps: float, fit: ReidFit | None) -> np.ndarray:
    """Score of every tail (row) -> head (column) hand-over; <= 0 where it may not happen."""
    n = len(tracklets)
    out = np.zeros((n, n))
    tails = [_end(t, config.end_span, tail=True) for t in tracklets]
    heads = [_end(t, config.end_span, tail=False) for t in tracklets]
    features = [t.feature for t in tracklets]
    max_gap = config.max_gap_s * fps
    # Heads by start frame: each tail meets only those starting within max_gap after it.
    order = sorted(range(n), key=lambda j: tracklets[j].start)
    starts = [tracklets[j].start for j in order]
    for i, a in enumerate(tracklets):
        first, last = bisect.bisect_right(starts, a.end), bisect.bisect_right(starts, a.end + max_gap)
        for j in order[first:last]:
            b = tracklets[j]
            gap = b.start - a.end
            if i == j or b.anchor is not None or b.camera_id != a.camera_id:
                continue
            error = _motion_error(tails[i], heads[j], gap, fps, config)
            if error is None:
                continue
            score = config.base_log_odds - config.motion_weight * error - config.gap_penalty_per_s * gap / fps
            if features[i] is not None and features[j] is not None:
                score += config.appearance_weight * _log_odds(features[i], features[j], fit)
            if a.online_track == b.online_track:
                score += config.continuity_bonus
            out[i, j] = score
    return out


def _log_odds(a: np.ndarray, b: np.ndarray, fit: ReidFit | None) -> float:
    if fit is None:
        return 0.0
    return float(fit.log_odds(1.0 - float(a @ b)))


def _motion_error(tail: _End, head: _End, gap: int, fps: float, config: LinkConfig) -> float | None:
    """How far apart the two ends are once carried across the gap, in allowed errors; None if ruled out."""
    seconds = gap / fps
    height = (tail.height + head.height) / 2
    ratio = max(tail.height, head.height) / max(min(tail.height, head.height), 1.0)
    if ratio > config.max_height_ratio + config.height_ratio_per_s * seconds:
        return None
    errors = []
    if tail.velocity is not None:
        errors.append(np.linalg.norm(tail.position + tail.velocity * gap - head.position))
    if head.velocity is not None:
        errors.append(np.linalg.norm(head.position - head.velocity * gap - tail.position))
    allowed = config.base_error + config.error_per_s * seconds
    if errors:
        error = float(np.mean(errors)) / height / allowed
    else:
        error = float(np.linalg.norm(head.position - tail.position)) / height / (allowed + config.walk_per_s * seconds)
    return error if error <= config.max_error else None


def _end(t: Tracklet, span: int, tail: bool) -> _End:
    """Position, velocity and height at one end of a tracklet, fitted over its last (first) frames."""
    sl = slice(-span, None) if tail else slice(0, span)
    frames, boxes = t.frames[sl], t.boxes[sl]
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    frame = int(frames[-1] if tail else frames[0])
    height = float(np.median(heights(boxes)))
    if len(frames) < 3 or frames[-1] - frames[0] < 2:
        return _End(frame, centres[-1 if tail else 0].astype(np.float64), None, height)
    # Least squares: centre = position + velocity x (frame - end frame).
    t_rel = (frames - frame).astype(np.float64)
    design = np.stack([np.ones_like(t_rel), t_rel], axis=1)
    coef, *_ = np.linalg.lstsq(design, centres.astype(np.float64), rcond=None)
    return _End(frame, coef[0], coef[1], height)
