"""The tracking domain's configuration, from the service settings: the one place they meet.

Tasks, live streams and the benchmarks' replays all build their trackers here, so that what
``bench/`` measures is what the service runs. The values come as :class:`TrackingValues`,
which the service's ``Settings`` satisfies as it is: callers bind it with
``functools.partial(tracking_setup, settings)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Protocol

from spoton_inference.domain.environment import Camera
from spoton_inference.tracking.appearance import ReidCalibration
from spoton_inference.tracking.camera import TrackerConfig
from spoton_inference.tracking.identities import AssociationConfig
from spoton_inference.tracking.multicam import MultiCameraTracker
from spoton_inference.tracking.refine.refiner import RefineConfig, Refiner


class TrackingValues(Protocol):
    """The settings tracking reads (SPOTON_DETECTION_THRESHOLD, SPOTON_REID_*, SPOTON_ASSOCIATION_*, ...)."""

    @property
    def detection_threshold(self) -> float: ...
    @property
    def reid_same_distance(self) -> float: ...
    @property
    def reid_different_distance(self) -> float: ...
    @property
    def reid_self_calibrate(self) -> bool: ...
    @property
    def association_appearance_weight(self) -> float: ...
    @property
    def association_geometry_weight(self) -> float: ...
    @property
    def association_time_weight(self) -> float: ...
    @property
    def association_max_gap_s(self) -> float: ...
    @property
    def gallery_max_size(self) -> int: ...
    @property
    def refine_recorded(self) -> bool: ...
    @property
    def refine_window_frames(self) -> int: ...


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


def tracking_setup(settings: TrackingValues, fps: float) -> TrackingSetup:
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
