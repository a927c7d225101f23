"""A linked chain of tracklets as one box per frame: gaps filled, positions smoothed.

- **Gaps** of up to ``max_gap_s`` between two sightings are filled frame by frame with the
  box interpolated linearly between them; where a detection of that frame (a weak one the
  online tracker passed over, say) overlaps the interpolated box by ``snap_iou`` or more and
  no other track holds it, its own box is used instead.
- **Smoothing**: box coordinates are averaged over a Gaussian window of ``smooth_sigma_s``
  along the chain (StrongSORT's Gaussian-smoothed interpolation does the same with a
  Gaussian process), which takes detector jitter out of the foot point and so out of
  the map position.

Filled boxes carry score 0: no detection stood behind them.

Example:
    >>> import numpy as np
    >>> frames = np.array([0, 3])
    >>> boxes = np.array([[0, 0, 10, 30], [30, 0, 40, 30]], np.float32)
    >>> out = fill_chain(frames, boxes, np.array([0.9, 0.8], np.float32), FillConfig(smooth_sigma_s=0), fps=10)
    >>> out.frames.tolist(), out.boxes[:, 0].tolist(), [round(float(v), 2) for v in out.scores]
    ([0, 1, 2, 3], [0.0, 10.0, 20.0, 30.0], [0.9, 0.0, 0.0, 0.8])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from spoton_inference.tracking.boxes import iou_matrix


@dataclasses.dataclass(frozen=True, slots=True)
class FillConfig:
    max_gap_s: float = 1.0
    snap_iou: float = 0.5
    smooth_sigma_s: float = 0.25


@dataclasses.dataclass(frozen=True, slots=True)
class FilledTrack:
    frames: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray  # 0 where the box was filled in
    observed: np.ndarray  # bool: a detection stood behind the box


# (frame, interpolated box) -> a free detection's (box, score) overlapping it, or None.
SnapLookup = Callable[[int, np.ndarray], tuple[np.ndarray, float] | None]


def fill_chain(
    frames: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    config: FillConfig,
    fps: float,
    snap: SnapLookup | None = None,
) -> FilledTrack:
    """One box per frame from the chain's first sighting to its last (see the module docs)."""
    max_gap = round(config.max_gap_s * fps)
    out_frames, out_boxes, out_scores, observed = [frames[0]], [boxes[0]], [scores[0]], [True]
    for k in range(1, len(frames)):
        gap = int(frames[k] - frames[k - 1])
        if 1 < gap <= max_gap + 1:
            for step in range(1, gap):
                frame = int(frames[k - 1]) + step
                box = boxes[k - 1] + (boxes[k] - boxes[k - 1]) * step / gap
                found = snap(frame, box) if snap is not None else None
                out_frames.append(frame)
                out_boxes.append(found[0] if found is not None else box)
                out_scores.append(found[1] if found is not None else 0.0)
                observed.append(found is not None)
        out_frames.append(frames[k])
        out_boxes.append(boxes[k])
        out_scores.append(scores[k])
        observed.append(True)
    result = FilledTrack(
        np.array(out_frames, np.int64),
        np.array(out_boxes, np.float32),
        np.array(out_scores, np.float32),
        np.array(observed, bool),
    )
    sigma = config.smooth_sigma_s * fps
    return dataclasses.replace(result, boxes=smooth_boxes(result.frames, result.boxes, sigma)) if sigma > 0 else result


def smooth_boxes(frames: np.ndarray, boxes: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Each box coordinate from a straight line fitted to its neighbouring frames, Gaussian-weighted.

    A local linear fit rather than a plain average, so a walking person's box is not pulled
    back at the ends of the track. Frames with no box take no part; the window is cut at 3 sigma.
    """
    if len(frames) < 3:
        return boxes
    first = int(frames[0])
    dense = np.zeros((int(frames[-1]) - first + 1, 4))
    present = np.zeros(len(dense))
    dense[frames - first] = boxes
    present[frames - first] = 1.0
    reach = max(1, int(np.ceil(3 * sigma_frames)))
    offsets = np.arange(-reach, reach + 1, dtype=np.float64)
    w = np.exp(-0.5 * (offsets / sigma_frames) ** 2)

    def window_sum(values: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        return np.correlate(np.pad(values, reach), kernel, mode="valid")

    s0, s1, s2 = (window_sum(present, w * offsets**k) for k in range(3))
    det = s0 * s2 - s1**2
    out = np.empty_like(dense)
    for k in range(4):
        sy, sty = window_sum(dense[:, k], w), window_sum(dense[:, k], w * offsets)
        linear = (s2 * sy - s1 * sty) / np.where(np.abs(det) > 1e-9, det, 1.0)
        out[:, k] = np.where(np.abs(det) > 1e-9 * s0**2, linear, sy / np.maximum(s0, 1e-12))
    return out[frames - first].astype(np.float32)


def detection_snapper(detections: dict[int, tuple[np.ndarray, np.ndarray]], min_iou: float) -> SnapLookup:
    """A :data:`SnapLookup` over one camera's detections; a detection is handed out once."""
    taken: set[tuple[int, int]] = set()

    def snap(frame: int, box: np.ndarray) -> tuple[np.ndarray, float] | None:
        found = detections.get(frame)
        if found is None:
            return None
        boxes, scores = found
        iou = iou_matrix(box[None].astype(np.float32), boxes)[0]
        for d in np.argsort(-iou):
            if iou[d] < min_iou:
                return None
            if (frame, int(d)) not in taken:
                taken.add((frame, int(d)))
                return boxes[d], float(scores[d])
        return None

    return snap
