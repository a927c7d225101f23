"""One global frame across all cameras, online: track per camera, map to the floor, assign global ids.

The transport-free core of a task, a live stream and the accuracy replay in ``bench/``: what
the benchmark measures is what the service does. A frame is two calls, with one batched
embedding request between them. Along the way it feeds a
:class:`~spoton_inference.tracking.calibration.CalibrationSampler` and, about once a second
of video, refits what the embedder's distances mean on this data; trackers and associator
then use the fitted calibration instead of the configured one.

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

from spoton_inference.tracking.calibration import CalibrationSampler, ReidFit
from spoton_inference.tracking.camera import CameraTracker, FramePlan, TrackerConfig
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


class MultiCameraTracker:
    def __init__(
        self,
        camera_ids: Sequence[str],
        homographies: Mapping[str, object | None],
        tracker_config: TrackerConfig | None = None,
        association_config: AssociationConfig | None = None,
        track_start_scores: Mapping[str, float] | None = None,
        self_calibrate: bool = True,
    ) -> None:
        """``homographies``: per camera an object with ``project_points(Nx2) -> Nx2`` (or None).
        ``track_start_scores``: per-camera detection thresholds over ``tracker_config.high_score``."""
        config = tracker_config or TrackerConfig()
        scores = track_start_scores or {}
        self._trackers = {
            c: CameraTracker(dataclasses.replace(config, high_score=scores[c]) if c in scores else config)
            for c in camera_ids
        }
        self._homographies = dict(homographies)
        self.identities = GlobalIdentities(association_config)
        self.sampler = CalibrationSampler() if self_calibrate else None
        self._prior = config.calibration
        self.fit: ReidFit = ReidFit.prior(self._prior)
        self._refit_every = max(1, round(self.identities.config.fps))
        self._frames = 0

    def plan(self, detections: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, FramePlan]:
        """Predict every camera's tracks; each plan names the detections to embed."""
        return {cam: self._trackers[cam].plan(boxes, scores) for cam, (boxes, scores) in detections.items()}

    def update(
        self, frame: int, plans: Mapping[str, FramePlan], embeddings: Mapping[str, dict[int, np.ndarray]]
    ) -> dict[str, list[GlobalTrack]]:
        """Associate per camera, then across cameras; embeddings are keyed by camera, then detection index."""
        observations: list[Observation] = []
        tracked = {}
        for cam, plan in plans.items():
            tracker = self._trackers[cam]
            tracks = tracker.update(plan, embeddings.get(cam, {}))
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
                confident = plan.boxes[plan.scores >= tracker.config.high_score]
                self.sampler.add_frame(
                    cam,
                    frame,
                    [t.track_id for t in tracks],
                    np.array([t.box for t in tracks], np.float32).reshape(-1, 4),
                    [t.crop for t in tracks],
                    confident,
                )
        gids = self.identities.assign(frame, observations)
        self._frames += 1
        if self.sampler is not None and self._frames % self._refit_every == 0:
            self._refit(frame)
        return {
            cam: [GlobalTrack(t.track_id, gids[(cam, t.track_id)], t.box, t.score, xy, t.crop) for t, xy in pairs]
            for cam, pairs in tracked.items()
        }

    def _refit(self, frame: int) -> None:
        """Use the calibration fitted on this data so far, once there is one."""
        assert self.sampler is not None
        self.sampler.forget_older_than(frame - 10 * self._refit_every)
        fit = self.sampler.fit(self._prior)
        self.fit = fit
        for tracker in self._trackers.values():
            tracker.config = dataclasses.replace(tracker.config, calibration=fit.calibration)
        self.identities.recalibrate(fit.calibration)
