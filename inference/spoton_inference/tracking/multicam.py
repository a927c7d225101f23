"""One global frame across all cameras, online: track per camera, map to the floor, assign global ids.

The transport-free core of a task, a live stream and the accuracy replay in ``bench/``: what
the benchmark measures is what the service does. It comes in two halves, so that cameras may
be tracked on several replicas while one association serves the environment:

- :class:`CameraTrackers`, the per-camera half: a frame is two calls, with one batched
  embedding request between them, and gives a :class:`CameraFrame` per camera;
- :class:`Association`, the environment's half: it maps foot points, assigns global ids and
  feeds a :class:`~spoton_inference.tracking.calibration.CalibrationSampler`; about once a
  second of video (:func:`refit_between`) it refits what the embedder's distances mean on this data, and
  the trackers take that calibration from the next frame on.

:class:`MultiCameraTracker` puts both halves in one process.

    >>> import numpy as np
    >>> mc = MultiCameraTracker(["c1"], {"c1": None}, TrackerConfig(min_hits=1))
    >>> plans = mc.plan({"c1": (np.array([[10, 10, 50, 120]], np.float32), np.array([0.9], np.float32))})
    >>> [(t.track_id, t.global_id) for t in mc.update(0, plans, {})["c1"]]
    [(1, 1)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from spoton_inference.tracking.appearance import ReidCalibration
from spoton_inference.tracking.calibration import CalibrationSampler, ReidFit
from spoton_inference.tracking.camera import CameraTracker, FramePlan, TrackedBox, TrackerConfig
from spoton_inference.tracking.identities import AssociationConfig, GlobalIdentities, Observation


@dataclasses.dataclass(frozen=True, slots=True)
class GlobalTrack:
    """One person in one camera at one frame, with their global id."""

    track_id: int
    global_id: int
    box: np.ndarray  # x1, y1, x2, y2 pixels
    score: float
    map_xy: tuple[float, float] | None
    # This frame's crop embedding, when one was computed (for refinement and calibration).
    crop: np.ndarray | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CameraFrame:
    """What one camera's tracker gives association for one frame."""

    tracks: list[TrackedBox]
    # The frame's detections at or above the camera's own high score, Nx4 (calibration samples).
    confident: np.ndarray


def refit_every(fps: float) -> int:
    """Frames between calibration refits: about one second of video."""
    return max(1, round(fps))


def refit_between(after: int, upto: int, every: int) -> bool:
    """Whether association, having processed frame ``after`` and then ``upto``, refits: when
    that reaches a multiple of ``every`` frames. It depends on frame indices alone, so a camera
    tracked on another replica knows when to wait for the fit.

    >>> [f for f in range(25) if refit_between(f - 1, f, 10)]
    [9, 19]
    >>> refit_between(5, 12, 10), refit_between(9, 18, 10), refit_between(9, 9, 10)
    (True, False, False)
    """
    return (upto + 1) // every > (after + 1) // every


class CameraTrackers:
    """The per-camera half: one :class:`CameraTracker` per camera, sharing one calibration."""

    def __init__(
        self,
        camera_ids: Sequence[str],
        config: TrackerConfig,
        track_start_scores: Mapping[str, float] | None = None,
    ) -> None:
        """``track_start_scores``: per-camera detection thresholds over ``config.high_score``."""
        scores = track_start_scores or {}
        self._trackers = {
            c: CameraTracker(dataclasses.replace(config, high_score=scores[c]) if c in scores else config)
            for c in camera_ids
        }

    def plan(self, detections: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, FramePlan]:
        """Predict every camera's tracks; each plan names the detections to embed."""
        return {cam: self._trackers[cam].plan(boxes, scores) for cam, (boxes, scores) in detections.items()}

    def update(
        self, plans: Mapping[str, FramePlan], embeddings: Mapping[str, dict[int, np.ndarray]]
    ) -> dict[str, CameraFrame]:
        """Associate per camera; embeddings are keyed by camera, then detection index."""
        out = {}
        for cam, plan in plans.items():
            tracker = self._trackers[cam]
            tracks = tracker.update(plan, embeddings.get(cam, {}))
            out[cam] = CameraFrame(tracks, plan.boxes[plan.scores >= tracker.config.high_score])
        return out

    def calibration(self, camera_id: str) -> ReidCalibration:
        """The Re-ID calibration this camera's tracker uses now."""
        return self._trackers[camera_id].config.calibration

    def recalibrate(self, calibration: ReidCalibration) -> None:
        for tracker in self._trackers.values():
            tracker.config = dataclasses.replace(tracker.config, calibration=calibration)


class Association:
    """The environment's half: map, global ids and the calibration fitted on the way."""

    def __init__(
        self,
        homographies: Mapping[str, object | None],
        tracker_config: TrackerConfig,
        association_config: AssociationConfig | None = None,
        self_calibrate: bool = True,
    ) -> None:
        """``homographies``: per camera an object with ``project_points(Nx2) -> Nx2`` (or None)."""
        self._homographies = dict(homographies)
        self.identities = GlobalIdentities(association_config)
        self.sampler = CalibrationSampler() if self_calibrate else None
        self._prior = tracker_config.calibration
        self.fit: ReidFit = ReidFit.prior(self._prior)
        self.refit_every = refit_every(self.identities.config.fps)
        self.last_frame = -1  # the latest frame processed

    def update(
        self, frame: int, cameras: Mapping[str, CameraFrame]
    ) -> tuple[dict[str, list[GlobalTrack]], ReidCalibration | None]:
        """Global tracks per camera, and the calibration the trackers take from the next frame
        on when this frame refitted it (None otherwise). Cameras are taken in the given order."""
        observations: list[Observation] = []
        tracked = {}
        for cam, camera_frame in cameras.items():
            tracks = camera_frame.tracks
            h = self._homographies.get(cam)
            feet = None
            if h is not None and tracks:
                boxes = np.array([t.box for t in tracks], np.float64)
                feet = h.project_points(np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1))
            xys = [(float(feet[i, 0]), float(feet[i, 1])) if feet is not None else None for i in range(len(tracks))]
            tracked[cam] = list(zip(tracks, xys, strict=True))
            for t, xy in tracked[cam]:
                feature = t.feature if t.is_new or t.crop is not None else None
                observations.append(Observation(cam, t.track_id, xy, feature, t.is_new))
            if self.sampler is not None:
                self.sampler.add_frame(
                    cam,
                    frame,
                    [t.track_id for t in tracks],
                    np.array([t.box for t in tracks], np.float32).reshape(-1, 4),
                    [t.crop for t in tracks],
                    camera_frame.confident,
                )
        gids = self.identities.assign(frame, observations)
        refitted = None
        if self.sampler is not None and refit_between(self.last_frame, frame, self.refit_every):
            refitted = self._refit(frame)
        self.last_frame = max(self.last_frame, frame)
        out = {
            cam: [GlobalTrack(t.track_id, gids[(cam, t.track_id)], t.box, t.score, xy, t.crop) for t, xy in pairs]
            for cam, pairs in tracked.items()
        }
        return out, refitted

    def _refit(self, frame: int) -> ReidCalibration:
        """Use the calibration fitted on this data so far, once there is one."""
        assert self.sampler is not None
        self.sampler.forget_older_than(frame - 10 * self.refit_every)
        self.fit = self.sampler.fit(self._prior)
        self.identities.recalibrate(self.fit.calibration)
        return self.fit.calibration


class MultiCameraTracker:
    """Both halves in one process: what a live stream and the benchmarks' replays run."""

    def __init__(
        self,
        camera_ids: Sequence[str],
        homographies: Mapping[str, object | None],
        tracker_config: TrackerConfig | None = None,
        association_config: AssociationConfig | None = None,
        track_start_scores: Mapping[str, float] | None = None,
        self_calibrate: bool = True,
    ) -> None:
        """``track_start_scores``: per-camera detection thresholds over ``tracker_config.high_score``."""
        config = tracker_config or TrackerConfig()
        self.cameras = CameraTrackers(camera_ids, config, track_start_scores)
        self.association = Association(homographies, config, association_config, self_calibrate)

    @property
    def identities(self) -> GlobalIdentities:
        return self.association.identities

    @property
    def fit(self) -> ReidFit:
        return self.association.fit

    @property
    def sampler(self) -> CalibrationSampler | None:
        return self.association.sampler

    def plan(self, detections: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, FramePlan]:
        """Predict every camera's tracks; each plan names the detections to embed."""
        return self.cameras.plan(detections)

    def update(
        self, frame: int, plans: Mapping[str, FramePlan], embeddings: Mapping[str, dict[int, np.ndarray]]
    ) -> dict[str, list[GlobalTrack]]:
        """Associate per camera, then across cameras; embeddings are keyed by camera, then detection index."""
        tracked, refitted = self.association.update(frame, self.cameras.update(plans, embeddings))
        if refitted is not None:
            self.cameras.recalibrate(refitted)
        return tracked
