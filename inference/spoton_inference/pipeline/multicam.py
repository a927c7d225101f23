"""One global frame across all cameras: track per camera, map to the floor, assign global ids.

The transport-free core of a task: the runner (recorded video) and the accuracy replay in
``bench/`` drive the same object, so what the benchmark measures is what the service does.
A frame is two calls, with one batched embedding request between them:

    >>> import numpy as np
    >>> mc = MultiCameraTracker(["c1"], {"c1": None}, TrackerConfig(min_hits=1))
    >>> plans = mc.plan({"c1": (np.array([[10, 10, 50, 120]], np.float32), np.array([0.9], np.float32))})
    >>> [(t.track_id, t.global_id) for t in mc.update(0, plans, {})["c1"]]
    [(1, 1)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from spoton_inference.core.environment import Camera
from spoton_inference.core.geometry import Homography, foot_points
from spoton_inference.pipeline.associate import AssociationConfig, GlobalIdentities, Observation
from spoton_inference.pipeline.track import CameraTracker, FramePlan, TrackerConfig
from spoton_inference.settings import Settings


def tracking_configs(settings: Settings, fps: float) -> tuple[TrackerConfig, AssociationConfig]:
    """The tracker's and the associator's configuration from the service settings."""
    calibration = {
        "reid_same_distance": settings.reid_same_distance,
        "reid_different_distance": settings.reid_different_distance,
    }
    return (
        TrackerConfig(
            high_score=settings.detection_threshold, low_score_veto=settings.reid_low_score_veto, **calibration
        ),
        AssociationConfig(
            fps=fps,
            appearance_weight=settings.association_appearance_weight,
            geometry_weight=settings.association_geometry_weight,
            time_weight=settings.association_time_weight,
            max_gap_s=settings.association_max_gap_s,
            max_identities=settings.gallery_max_size,
            **calibration,
        ),
    )


def track_start_scores(cameras: Iterable[Camera]) -> dict[str, float]:
    """The cameras' own detection thresholds, for those that have one."""
    return {c.camera_id: c.detection_threshold for c in cameras if c.detection_threshold is not None}


@dataclasses.dataclass(frozen=True, slots=True)
class GlobalTrack:
    """One person in one camera at one frame, with their global id."""

    track_id: int
    global_id: int
    box: np.ndarray  # x1, y1, x2, y2 pixels
    score: float
    map_xy: tuple[float, float] | None


class MultiCameraTracker:
    def __init__(
        self,
        camera_ids: Sequence[str],
        homographies: Mapping[str, Homography | None],
        tracker_config: TrackerConfig | None = None,
        association_config: AssociationConfig | None = None,
        track_start_scores: Mapping[str, float] | None = None,
    ) -> None:
        """``track_start_scores``: per-camera detection thresholds (a camera's own setting) over
        ``tracker_config.high_score``."""
        config = tracker_config or TrackerConfig()
        scores = track_start_scores or {}
        self._trackers = {
            c: CameraTracker(dataclasses.replace(config, high_score=scores[c]) if c in scores else config)
            for c in camera_ids
        }
        self._homographies = dict(homographies)
        self.identities = GlobalIdentities(association_config)
        # (camera, global id) -> the local id that camera last gave the person.
        self._local_ids: dict[tuple[str, int], int] = {}
        # (camera, local id) -> the global id it had last frame.
        self._last_gid: dict[tuple[str, int], int] = {}

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
            tracks = self._trackers[cam].update(plan, embeddings.get(cam, {}))
            h = self._homographies.get(cam)
            feet = h.project_points(foot_points(np.array([t.box for t in tracks]))) if h and tracks else None
            xys = [(float(feet[i, 0]), float(feet[i, 1])) if feet is not None else None for i in range(len(tracks))]
            tracked[cam] = list(zip(tracks, xys, strict=True))
            for t, xy in tracked[cam]:
                feature = t.feature if t.is_new or t.crop is not None else None
                observations.append(Observation(cam, t.track_id, xy, feature, t.is_new, t.crop))
        gids = self.identities.assign(frame, observations)
        out: dict[str, list[GlobalTrack]] = {}
        for cam, pairs in tracked.items():
            renamed = self._follow_moves(cam, {t.track_id: gids[(cam, t.track_id)] for t, _ in pairs if not t.is_new})
            out[cam] = []
            for t, xy in pairs:
                gid, track_id = gids[(cam, t.track_id)], renamed.get(t.track_id, t.track_id)
                earlier = self._local_ids.get((cam, gid))
                if t.is_new and earlier is not None and self._trackers[cam].relabel(track_id, earlier):
                    self.identities.rename_track(cam, track_id, earlier)
                    track_id = earlier
                self._local_ids[(cam, gid)] = track_id
                self._last_gid[(cam, track_id)] = gid
                out[cam].append(GlobalTrack(track_id, gid, t.box, t.score, xy))
        # Forget the local ids their cameras' trackers dropped (cameras not updated keep theirs).
        kept = {cam: self._trackers[cam].track_ids for cam in tracked}
        self._last_gid = {k: g for k, g in self._last_gid.items() if k[0] not in kept or k[1] in kept[k[0]]}
        return out

    def _follow_moves(self, cam: str, gids: dict[int, int]) -> dict[int, int]:
        """Renumber the local tracks the associator moved to another identity; old id -> new id.

        A local id means one person, like a global one: two tracks that swapped identities
        swap ids, and a track that moved to someone else takes a fresh id.
        """
        folded = self.identities.folded
        was = {
            tid: last
            for tid, gid in gids.items()
            if (last := self._last_gid.get((cam, tid), gid)) != gid and folded.get(last) != gid
        }
        tracker, renamed = self._trackers[cam], {}
        for tid in was:
            if tid in renamed:
                continue
            # the track that took this one's identity, if it took the other's in exchange
            partner = next((p for p in was if p not in renamed and gids[p] == was[tid] and was[p] == gids[tid]), None)
            if partner is not None:
                tracker.exchange_ids(tid, partner)
                self.identities.exchange_tracks(cam, tid, partner)
                renamed[tid], renamed[partner] = partner, tid
            else:
                renamed[tid] = tracker.renumber(tid)
                self.identities.rename_track(cam, tid, renamed[tid])
        return renamed
