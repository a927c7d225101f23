"""Per-camera tracking: local track ids, frame by frame, as a state machine with declared stages.

Every track is in one :class:`TrackState`:

- ``TENTATIVE``: born from a confident detection nobody claimed; not reported yet. It is
  removed at its first miss, so a one-frame false positive never becomes a track.
- ``CONFIRMED``: matched on ``min_hits`` frames in a row; reported with its detection's box
  on every frame it is matched.
- ``LOST``: a confirmed track unmatched for up to ``max_lost_s`` seconds; kept to be found again.
- ``REMOVED``: gone for good (tentative and missed, or lost too long).

Each frame runs the :data:`STAGES` in order; each stage pairs the tracks it admits with the
detections left, solved optimally (``scipy.optimize.linear_sum_assignment``) under its own
cost and gate:

1. ``confident``: every track against the confident detections (score >= ``high_score``),
   by the overlap of its predicted box, the direction of travel and, where both are known,
   appearance;
2. ``weak``: tracks seen last frame against weak detections (``low_score`` .. ``high_score``),
   by overlap alone: a partly hidden person keeps their track (ByteTrack);
3. ``refind``: lost tracks against the confident detections left, within a reach that grows
   with the time lost, by appearance and distance.

Then confident detections left start tentative tracks. The motion model is
:class:`~spoton_inference.tracking.motion.BoxMotion`; a track found again after a gap is
re-updated along it. Reported boxes are the detections' own, never predictions.

A frame is two calls, so the crops of every camera can be embedded in one request:
:meth:`CameraTracker.plan` predicts and names the detections worth embedding, and
:meth:`CameraTracker.update` associates given those embeddings.

Example:
    >>> import numpy as np
    >>> t = CameraTracker(TrackerConfig(min_hits=1))
    >>> def step(box):
    ...     plan = t.plan(np.array([box], np.float32), np.array([0.9], np.float32))
    ...     return [(o.track_id, o.is_new) for o in t.update(plan, {})]
    >>> step([10, 10, 50, 120])
    [(1, True)]
    >>> step([12, 10, 52, 120])
    [(1, False)]
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment

from spoton_inference.tracking.appearance import Feature, ReidCalibration
from spoton_inference.tracking.boxes import centre_distance, centres, height_ratio, iou_matrix
from spoton_inference.tracking.motion import BoxMotion

# A cost at or above this is no pairing at all.
_FORBIDDEN = 1e6
# The frame rate the overlap gates are set for. Below it a walker moves further between
# frames, so consecutive boxes overlap less (at 7 frames/s about a third of a body width).
OVERLAP_FPS = 10.0


class TrackState(enum.Enum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    REMOVED = "removed"


@dataclasses.dataclass(frozen=True, slots=True)
class TrackerConfig:
    fps: float = 10.0
    # Detections at or above this score start and extend tracks; from low_score up they only extend.
    high_score: float = 0.45
    low_score: float = 0.1
    # confident: the predicted box must overlap the detection by this IoU (at OVERLAP_FPS and
    # above; scaled down in proportion below it, where people move further between frames)...
    min_iou: float = 0.2
    # ...and the cost is 1 - IoU, plus this weight times the turn (0..1, half a turn = 1)
    # between the track's direction of travel and the direction to the detection...
    direction_weight: float = 0.2
    # ...fused with appearance where both sides are known, at this weight; a detection whose
    # appearance costs more than max_appearance_cost is not the track's person.
    appearance_weight: float = 0.5
    max_appearance_cost: float = 0.95
    # weak: IoU with the predicted box at least this.
    weak_min_iou: float = 0.4
    # refind: centre distance over the box height within reach + reach_per_frame x frames lost,
    # heights within max_height_ratio, and a combined cost (distance over reach averaged
    # with appearance) at most refind_max_cost.
    reach: float = 0.3
    reach_per_frame: float = 0.05
    max_height_ratio: float = 1.4
    refind_max_cost: float = 0.6
    # Re-ID calibration (tracking.appearance) and the momentum of each track's feature.
    calibration: ReidCalibration = dataclasses.field(default_factory=ReidCalibration)
    feature_momentum: float = 0.9
    # Which detections plan() embeds: those whose best IoU with a prediction is below
    # clear_iou or within ambiguity_margin of the second best, those overlapping another
    # detection by crowd_iou, those matched to a track younger than young_hits or back from
    # a miss, and every refresh_every frames per track.
    clear_iou: float = 0.5
    ambiguity_margin: float = 0.15
    crowd_iou: float = 0.1
    young_hits: int = 3
    refresh_every: int = 5
    min_hits: int = 2
    # A lost track is kept this long (seconds, so alike at any frame rate).
    max_lost_s: float = 4.0


@dataclasses.dataclass(slots=True)
class Track:
    track_id: int
    state: TrackState
    motion: BoxMotion
    box: np.ndarray  # the last matched detection
    score: float
    feature: Feature | None = None
    hits: int = 1
    misses: int = 0
    since_embedding: int = 0
    reported: bool = False
    crop: np.ndarray | None = None  # the crop embedding learnt this frame


@dataclasses.dataclass(frozen=True, slots=True)
class TrackedBox:
    """A confirmed track matched in the current frame."""

    track_id: int
    box: np.ndarray  # x1, y1, x2, y2 pixels: the matched detection
    score: float
    # First frame this track is reported: the caller assigns it a global id.
    is_new: bool
    # The track's smoothed appearance, None until one of its crops was embedded.
    feature: np.ndarray | None
    # This frame's crop embedding (unsmoothed), if one was learnt.
    crop: np.ndarray | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FramePlan:
    """One camera's frame between :meth:`CameraTracker.plan` and :meth:`CameraTracker.update`."""

    boxes: np.ndarray
    scores: np.ndarray
    predicted: np.ndarray  # one predicted box per track, in track order
    needs_embedding: tuple[int, ...]  # detection indices to embed


@dataclasses.dataclass(frozen=True, slots=True)
class _Frame:
    """What a stage's cost sees: the plan and the embeddings it asked for."""

    plan: FramePlan
    embeddings: dict[int, np.ndarray]


CONFIDENT, WEAK = "confident", "weak"


@dataclasses.dataclass(frozen=True, slots=True)
class Stage:
    """One association step: which tracks meet which detections, at what cost, under what gate."""

    name: str
    admits: Callable[[Track], bool]
    detections: str  # CONFIDENT or WEAK
    # cost(tracker, track indices, detection indices, frame) -> matrix; >= _FORBIDDEN is no pairing.
    cost: Callable[[CameraTracker, list[int], np.ndarray, _Frame], np.ndarray]
    max_cost: Callable[[TrackerConfig], float]


class CameraTracker:
    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        """Every track kept (tentative, confirmed and lost)."""
        return list(self._tracks)

    def plan(self, boxes: np.ndarray, scores: np.ndarray) -> FramePlan:
        """Predict every track one frame ahead and choose the detections to embed."""
        cfg = self.config
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        for track in self._tracks:
            track.motion.predict()
        predicted = np.array([t.motion.box() for t in self._tracks], np.float32).reshape(-1, 4)
        confident = np.flatnonzero(scores >= cfg.high_score)
        iou = iou_matrix(predicted, boxes[confident])
        crowd = iou_matrix(boxes[confident], boxes[confident])
        np.fill_diagonal(crowd, 0.0)
        needs: list[int] = []
        for col, det in enumerate(confident):
            ranked = np.sort(iou[:, col])[::-1] if len(predicted) else np.zeros(1)
            best, second = ranked[0], (ranked[1] if len(ranked) > 1 else 0.0)
            if (
                best < cfg.clear_iou
                or best - second < cfg.ambiguity_margin
                or crowd[col].max(initial=0) > cfg.crowd_iou
            ):
                needs.append(int(det))
                continue
            track = self._tracks[int(np.argmax(iou[:, col]))]
            if track.since_embedding + 1 >= cfg.refresh_every or track.hits < cfg.young_hits or track.misses > 0:
                needs.append(int(det))
        return FramePlan(boxes, scores, predicted, tuple(needs))

    def update(self, plan: FramePlan, embeddings: dict[int, np.ndarray]) -> list[TrackedBox]:
        """Associate this frame's detections, stage by stage, given the embeddings :meth:`plan` asked for."""
        cfg = self.config
        frame = _Frame(plan, embeddings)
        pools = {
            CONFIDENT: np.flatnonzero(plan.scores >= cfg.high_score),
            WEAK: np.flatnonzero((plan.scores >= cfg.low_score) & (plan.scores < cfg.high_score)),
        }
        matched_tracks: dict[int, int] = {}  # track index -> detection index
        taken: set[int] = set()
        for stage in STAGES:
            tracks = [i for i, t in enumerate(self._tracks) if i not in matched_tracks and stage.admits(t)]
            dets = np.array([d for d in pools[stage.detections] if d not in taken], dtype=int)
            if not tracks or not len(dets):
                continue
            cost = stage.cost(self, tracks, dets, frame)
            for r, c in _assign(cost, stage.max_cost(cfg)):
                matched_tracks[tracks[r]] = int(dets[c])
                taken.add(int(dets[c]))
        self._apply(matched_tracks, plan, embeddings)
        for d in pools[CONFIDENT]:
            if d not in taken:
                self._start(plan.boxes[d], float(plan.scores[d]), embeddings.get(int(d)))
        return self._report()

    # --- stage costs -------------------------------------------------------------------

    def _confident_cost(self, tracks: list[int], dets: np.ndarray, frame: _Frame) -> np.ndarray:
        cfg = self.config
        boxes = frame.plan.boxes[dets]
        iou = iou_matrix(frame.plan.predicted[tracks], boxes)
        cost = (1.0 - iou) + cfg.direction_weight * self._turn(tracks, boxes)
        app = self._appearance(tracks, dets, frame)
        cost = np.where(np.isnan(app), cost, (1 - cfg.appearance_weight) * cost + cfg.appearance_weight * app)
        cost[(iou < cfg.min_iou * _overlap_scale(cfg)) | (np.nan_to_num(app, nan=0.0) > cfg.max_appearance_cost)] = (
            _FORBIDDEN
        )
        return cost

    def _weak_cost(self, tracks: list[int], dets: np.ndarray, frame: _Frame) -> np.ndarray:
        return 1.0 - iou_matrix(frame.plan.predicted[tracks], frame.plan.boxes[dets])

    def _refind_cost(self, tracks: list[int], dets: np.ndarray, frame: _Frame) -> np.ndarray:
        cfg = self.config
        predicted, boxes = frame.plan.predicted[tracks], frame.plan.boxes[dets]
        distance = centre_distance(predicted, boxes)
        reach = np.array([cfg.reach + cfg.reach_per_frame * self._tracks[t].misses for t in tracks])[:, None]
        cost = distance / reach
        app = self._appearance(tracks, dets, frame)
        cost = np.where(np.isnan(app), cost, 0.5 * cost + 0.5 * app)
        out_of_reach = (distance > reach) | (height_ratio(predicted, boxes) > cfg.max_height_ratio)
        cost[out_of_reach | (np.nan_to_num(app, nan=0.0) > cfg.max_appearance_cost)] = _FORBIDDEN
        return cost

    def _appearance(self, tracks: list[int], dets: np.ndarray, frame: _Frame) -> np.ndarray:
        features = [f.vector if (f := self._tracks[t].feature) is not None else None for t in tracks]
        return self.config.calibration.pairwise(features, [frame.embeddings.get(int(d)) for d in dets])

    def _turn(self, tracks: list[int], boxes: np.ndarray) -> np.ndarray:
        """How far (0 straight on .. 1 turning back) each detection lies off each track's direction of travel."""
        out = np.zeros((len(tracks), len(boxes)))
        to = centres(boxes)
        for row, t in enumerate(tracks):
            direction = self._tracks[t].motion.direction
            if direction is None:
                continue
            delta = to - self._tracks[t].motion.last_centre
            norm = np.linalg.norm(delta, axis=1)
            cos = (delta @ direction) / np.maximum(norm, 1e-6)
            # A detection where the person stood says nothing about direction.
            out[row] = np.where(norm > 1.0, np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi, 0.0)
        return out

    # --- life cycle --------------------------------------------------------------------

    def _start(self, box: np.ndarray, score: float, embedding: np.ndarray | None) -> None:
        cfg = self.config
        state = TrackState.CONFIRMED if cfg.min_hits <= 1 else TrackState.TENTATIVE
        feature = Feature.of(embedding) if embedding is not None else None
        due = 0 if embedding is not None else cfg.refresh_every
        track = Track(self._next_id, state, BoxMotion.start(box, cfg.fps), box, score, feature, since_embedding=due)
        track.crop = embedding
        self._tracks.append(track)
        self._next_id += 1

    def _apply(self, matches: dict[int, int], plan: FramePlan, embeddings: dict[int, np.ndarray]) -> None:
        cfg = self.config
        for i, track in enumerate(self._tracks):
            track.since_embedding += 1
            track.crop = None
            d = matches.get(i)
            if d is None:
                track.misses += 1
                if track.state is TrackState.TENTATIVE or track.misses > cfg.max_lost_s * cfg.fps:
                    track.state = TrackState.REMOVED
                elif track.state is TrackState.CONFIRMED:
                    track.state = TrackState.LOST
                continue
            track.motion.update(plan.boxes[d])
            track.box = plan.boxes[d]
            track.score = float(plan.scores[d])
            track.hits += 1
            track.misses = 0
            if track.state is TrackState.LOST or track.hits >= cfg.min_hits:
                track.state = TrackState.CONFIRMED
            embedding = embeddings.get(d)
            # A weak detection's crop is partly hidden: it teaches the track nothing.
            if embedding is not None and plan.scores[d] >= cfg.high_score:
                if track.feature is None:
                    track.feature = Feature.of(embedding)
                else:
                    track.feature.add(embedding, cfg.feature_momentum)
                track.since_embedding = 0
                track.crop = embedding
        self._tracks = [t for t in self._tracks if t.state is not TrackState.REMOVED]

    def _report(self) -> list[TrackedBox]:
        out: list[TrackedBox] = []
        for track in self._tracks:
            if track.state is TrackState.CONFIRMED and track.misses == 0:
                feature = track.feature.vector if track.feature is not None else None
                out.append(
                    TrackedBox(track.track_id, track.box.copy(), track.score, not track.reported, feature, track.crop)
                )
                track.reported = True
        return out


def _overlap_scale(config: TrackerConfig) -> float:
    """How much of the overlap gates demand at this frame rate: all of it from OVERLAP_FPS up."""
    return min(1.0, config.fps / OVERLAP_FPS)


def _assign(cost: np.ndarray, max_cost: float) -> list[tuple[int, int]]:
    rows, cols = linear_sum_assignment(np.minimum(cost, _FORBIDDEN))
    return [(r, c) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= max_cost]


def _any(track: Track) -> bool:
    return True


def _seen_last_frame(track: Track) -> bool:
    return track.misses == 0


def _lost(track: Track) -> bool:
    return track.state is TrackState.LOST


#: The association stages, in order (see the module docs).
STAGES: tuple[Stage, ...] = (
    Stage("confident", _any, CONFIDENT, CameraTracker._confident_cost, lambda c: 1.0 + c.direction_weight),
    Stage("weak", _seen_last_frame, WEAK, CameraTracker._weak_cost, lambda c: 1.0 - c.weak_min_iou),
    Stage("refind", _lost, CONFIDENT, CameraTracker._refind_cost, lambda c: c.refind_max_cost),
)
