"""The tracking domain's configuration, from the service settings: the one place they meet.

Tasks, live streams and the benchmarks' replays all build their trackers here, so that what
``bench/`` measures is what the service runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from spoton_inference.domain.environment import Camera
from spoton_inference.settings import Settings
from spoton_inference.tracking.appearance import ReidCalibration
from spoton_inference.tracking.camera import TrackerConfig
from spoton_inference.tracking.identities import AssociationConfig
from spoton_inference.tracking.multicam import MultiCameraTracker
from spoton_inference.tracking.refine.refiner import RefineConfig, Refiner


@dataclasses.dataclass(frozen=True, slots=True)
class TrackingSetup:
    """How one task or stream tracks, at its frame rate."""

    tracker: TrackerConfig
    association: AssociationConfig
    self_calibrate: bool
    # None: recorded video is not refined, the online tracks are what is kept.
    refine: RefineConfig | None
    refine_window_frames: int

    def multicam(self, cameras: Sequence[Camera]) -> MultiCameraTracker:
        """The online tracker over these cameras (their homographies and own thresholds)."""
        return MultiCameraTracker(
            [c.camera_id for c in cameras],
            {c.camera_id: c.homography for c in cameras},
            self.tracker,
            self.association,
            track_start_scores(cameras),
            self_calibrate=self.self_calibrate,
        )

    def refiner(self, cameras: Sequence[Camera]) -> Refiner | None:
        """The refinement pass over these cameras, or None when recorded video is not refined."""
        if self.refine is None:
            return None
        projectors = {c.camera_id: (c.homography.project_points if c.homography else None) for c in cameras}
        return Refiner(self.tracker.fps, projectors, self.refine)


def tracking_setup(settings: Settings, fps: float) -> TrackingSetup:
    """Everything tracking takes from the settings, at this frame rate."""
    calibration = ReidCalibration(settings.reid_same_distance, settings.reid_different_distance)
    return TrackingSetup(
        tracker=TrackerConfig(fps=fps, high_score=settings.detection_threshold, calibration=calibration),
        association=AssociationConfig(
            fps=fps,
            appearance_weight=settings.association_appearance_weight,
            geometry_weight=settings.association_geometry_weight,
            time_weight=settings.association_time_weight,
            max_gap_s=settings.association_max_gap_s,
            max_identities=settings.gallery_max_size,
            calibration=calibration,
        ),
        self_calibrate=settings.reid_self_calibrate,
        refine=RefineConfig() if settings.refine_recorded else None,
        refine_window_frames=settings.refine_window_frames,
    )


def track_start_scores(cameras: Iterable[Camera]) -> dict[str, float]:
    """The cameras' own detection thresholds, for those that have one."""
    return {c.camera_id: c.detection_threshold for c in cameras if c.detection_threshold is not None}
