"""Tracking takes its values from anything that has the settings' fields, not only Settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from spoton_inference.pipeline.tracking_settings import TrackingValues, tracking_setup
from spoton_inference.settings import Settings


@dataclasses.dataclass(frozen=True)
class _Values:
    detection_threshold: float = 0.6
    reid_same_distance: float = 0.3
    reid_different_distance: float = 0.7
    reid_self_calibrate: bool = False
    association_appearance_weight: float = 0.4
    association_geometry_weight: float = 0.4
    association_time_weight: float = 0.2
    association_max_gap_s: float = 30.0
    gallery_max_size: int = 50
    refine_recorded: bool = False
    refine_window_frames: int = 600


def test_values_give_the_same_setup_as_settings_holding_them(tmp_path: Path) -> None:
    values = _Values()
    settings = Settings(data_dir=tmp_path, **dataclasses.asdict(values))
    typed: TrackingValues = values
    assert tracking_setup(typed, 12.5) == tracking_setup(settings, 12.5)


def test_the_setup_follows_the_values() -> None:
    setup = tracking_setup(_Values(), 25.0)
    assert (setup.tracker.fps, setup.tracker.high_score) == (25.0, 0.6)
    assert (setup.association.max_identities, setup.association.max_gap_s) == (50, 30.0)
    assert setup.refine is None and setup.refine_window_frames == 600 and not setup.self_calibrate
