"""The shapes analytics queries take and return: the history filter and the rows of trajectories,
heatmap cells, counts and dwell (services/analytics.py asks, storage/analytics_store.py answers)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryFilter:
    """What every query narrows by; empty fields do not filter."""

    environment_id: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    task_id: str = ""
    camera_ids: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class TrajectoryRow:
    task_id: str
    camera_id: str
    global_frame_index: int
    time: dt.datetime
    x: float
    y: float


@dataclasses.dataclass(frozen=True, slots=True)
class HeatmapCells:
    ix: np.ndarray  # int
    iy: np.ndarray  # int
    count: np.ndarray  # int


@dataclasses.dataclass(frozen=True, slots=True)
class CountRow:
    bucket_start: dt.datetime
    key: str  # camera id or zone id
    people: int


@dataclasses.dataclass(frozen=True, slots=True)
class DwellRow:
    zone_id: str
    task_id: str
    global_id: int
    dwell_seconds: float
    first_time: dt.datetime
    last_time: dt.datetime
