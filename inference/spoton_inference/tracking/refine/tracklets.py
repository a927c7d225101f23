"""Tracklets: the online tracks of one camera cut wherever their identity may have changed.

The online tracker decides frame by frame and cannot take a decision back. Refinement first
cuts each online track at the points where it may have passed from one person to another,
then lets the linker (:mod:`.linking`) join the pieces again with the whole window in view.
A track is cut:

- at a *gap*: frames it was not seen for longer than ``cut_gap_s`` (the online tracker
  bridged it by a guess);
- at a *jump*: a step between two sightings longer than ``jump_heights`` box heights per
  frame, more than anyone walks;
- at a *change of appearance*: a crop whose calibrated log-odds of showing the person of
  the crops before it (their running mean since the last cut) fall below
  ``change_log_odds``: the track passed to someone else without the boxes showing it.

Each piece keeps the online track's id, so the linker can weigh what the online tracker
thought against what the whole window shows.

Example:
    >>> import numpy as np
    >>> from spoton_inference.tracking.refine.record import WindowRecord
    >>> record = WindowRecord(["c1"])
    >>> for f in (0, 1, 2, 6, 7):  # seen, then unseen for three frames, then seen again
    ...     record.add("c1", f, [(1, 1, np.array([f, 0, f + 10, 30], np.float32), 0.9, None, None)])
    >>> [t.frames.tolist() for t in split_tracks("c1", record.sightings("c1"), TrackletConfig(), fps=10)]
    [[0, 1, 2], [6, 7]]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spoton_inference.tracking.boxes import heights
from spoton_inference.tracking.calibration import ReidFit
from spoton_inference.tracking.refine.record import Sightings


@dataclasses.dataclass(frozen=True, slots=True)
class TrackletConfig:
    # Cut where a track went unseen for longer than this.
    cut_gap_s: float = 0.25
    # Cut at a step longer than this many box heights per frame.
    jump_heights: float = 0.6
    # Cut before a crop this unlikely (log-odds) to show the person of the crops before it.
    change_log_odds: float = -2.0


@dataclasses.dataclass(slots=True)
class Tracklet:
    """A run of one online track in one camera, believed to be one person throughout."""

    camera_id: str
    frames: np.ndarray  # int64, increasing
    boxes: np.ndarray  # float32 Nx4
    scores: np.ndarray
    map_xy: np.ndarray  # Nx2, NaN without a homography
    online_track: int
    online_global: int  # the online global id it had most often
    embeddings: list[np.ndarray]
    # Set on tracklets standing for a person refined in an earlier window (see refiner):
    # their refined local id and global id, which whatever links to them inherits.
    anchor: tuple[int, int] | None = None

    @property
    def start(self) -> int:
        return int(self.frames[0])

    @property
    def end(self) -> int:
        return int(self.frames[-1])

    @property
    def feature(self) -> np.ndarray | None:
        """The unit mean of its crop embeddings, None without any."""
        if not self.embeddings:
            return None
        mean = np.mean(self.embeddings, axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-9)

    @property
    def mean_height(self) -> float:
        return float(np.mean(heights(self.boxes)))


def split_tracks(
    camera_id: str, sightings: Sightings, config: TrackletConfig, fps: float, fit: ReidFit | None = None
) -> list[Tracklet]:
    """Cut every online track of one camera into tracklets (see the module docs); without a
    ``fit``, appearance cuts nothing."""
    out: list[Tracklet] = []
    max_gap = max(1, round(config.cut_gap_s * fps))
    for track_id in np.unique(sightings.track_ids):
        rows = np.flatnonzero(sightings.track_ids == track_id)
        rows = rows[np.argsort(sightings.frames[rows], kind="stable")]
        frames = sightings.frames[rows]
        boxes = sightings.boxes[rows]
        step = np.diff(frames)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        moved = np.linalg.norm(np.diff(centres, axis=0), axis=1) / np.maximum(heights(boxes)[:-1], 1.0)
        cut = (step > max_gap) | (moved / np.maximum(step, 1) > config.jump_heights)
        if fit is not None:
            cut |= _appearance_changes(sightings, rows, cut, fit, config.change_log_odds)
        for piece in np.split(np.arange(len(rows)), np.flatnonzero(cut) + 1):
            out.append(_tracklet(camera_id, sightings, rows[piece], int(track_id)))
    return out


def _appearance_changes(s: Sightings, rows: np.ndarray, cut: np.ndarray, fit: ReidFit, threshold: float) -> np.ndarray:
    """Per step between consecutive rows, whether a crop right after it no longer shows the
    person of the crops since the last cut."""
    out = np.zeros(len(rows) - 1, dtype=bool)
    mean: np.ndarray | None = None
    for k, row in enumerate(rows):
        if k > 0 and cut[k - 1]:
            mean = None  # a new piece starts here anyway
        embedding = s.embeddings.get(int(row))
        if embedding is None:
            continue
        if mean is not None:
            unit = mean / max(float(np.linalg.norm(mean)), 1e-9)
            if float(fit.log_odds(1.0 - float(unit @ embedding))) < threshold:
                out[k - 1] = True
                mean = None
        mean = embedding if mean is None else mean + embedding
    return out


def _tracklet(camera_id: str, s: Sightings, rows: np.ndarray, track_id: int) -> Tracklet:
    globals_, counts = np.unique(s.global_ids[rows], return_counts=True)
    return Tracklet(
        camera_id=camera_id,
        frames=s.frames[rows],
        boxes=s.boxes[rows],
        scores=s.scores[rows],
        map_xy=s.map_xy[rows],
        online_track=track_id,
        online_global=int(globals_[np.argmax(counts)]),
        embeddings=[s.embeddings[r] for r in rows if r in s.embeddings],
    )
