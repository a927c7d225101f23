"""Cutting online tracks into tracklets: at gaps, contacts and jumps."""

import numpy as np

from spoton_inference.tracking.refine.record import WindowRecord
from spoton_inference.tracking.refine.tracklets import TrackletConfig, split_tracks


def _box(x: float) -> np.ndarray:
    return np.array([x, 0, x + 20, 60], np.float32)


def _record(rows: dict[int, list[tuple[int, int, float]]]) -> WindowRecord:
    """frame -> [(track id, global id, x)]"""
    record = WindowRecord(["c1"])
    for frame, sightings in rows.items():
        record.add("c1", frame, [(t, g, _box(x), 0.9, None, None) for t, g, x in sightings])
    return record


def _pieces(record: WindowRecord, **config: float) -> list[tuple[int, list[int]]]:
    tracklets = split_tracks("c1", record.sightings("c1"), TrackletConfig(**config), fps=10)
    return [(t.online_track, t.frames.tolist()) for t in tracklets]


def test_a_short_gap_keeps_the_track_whole_and_a_long_one_cuts_it():
    record = _record({f: [(1, 1, 2.0 * f)] for f in (0, 1, 3, 4, 9, 10)})
    assert _pieces(record, cut_gap_s=0.25) == [(1, [0, 1, 3, 4]), (1, [9, 10])]


def test_a_track_is_cut_where_it_touches_another_and_where_it_parts():
    # track 2 walks into track 1 (frames 3-5), then away
    rows = {
        f: [(1, 1, 100.0), (2, 2, 40.0 + 20 * f if f <= 3 else 100.0 if f <= 5 else 100.0 + 20 * (f - 5))]
        for f in range(9)
    }
    pieces = _pieces(_record(rows), contact_iou=0.3)
    assert (1, [0, 1, 2]) in pieces and (1, [3, 4, 5]) in pieces and (1, [6, 7, 8]) in pieces


def test_a_track_is_cut_at_a_jump_no_one_walks():
    record = _record({f: [(1, 1, 2.0 * f if f < 5 else 300.0 + 2 * f)] for f in range(10)})
    assert _pieces(record) == [(1, [0, 1, 2, 3, 4]), (1, [5, 6, 7, 8, 9])]


def test_each_piece_keeps_the_online_global_id_it_had_most():
    record = _record({f: [(1, 7 if f < 4 else 9, 2.0 * f)] for f in range(6)})
    (tracklet,) = split_tracks("c1", record.sightings("c1"), TrackletConfig(), fps=10)
    assert tracklet.online_global == 7
