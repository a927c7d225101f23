"""Cutting online tracks into tracklets: at gaps, jumps and changes of appearance."""

import numpy as np

from spoton_inference.tracking.calibration import ReidFit
from spoton_inference.tracking.refine.record import WindowRecord
from spoton_inference.tracking.refine.tracklets import TrackletConfig, split_tracks


def _box(x: float) -> np.ndarray:
    return np.array([x, 0, x + 20, 60], np.float32)


def _record(rows: dict[int, list[tuple[int, int, float]]], looks: dict[int, np.ndarray] | None = None) -> WindowRecord:
    """frame -> [(track id, global id, x)]; looks: frame -> the crop of that frame's first sighting"""
    record = WindowRecord(["c1"])
    for frame, sightings in rows.items():
        crop = (looks or {}).get(frame)
        record.add("c1", frame, [(t, g, _box(x), 0.9, None, crop) for t, g, x in sightings])
    return record


def _pieces(record: WindowRecord, **config: float) -> list[tuple[int, list[int]]]:
    tracklets = split_tracks("c1", record.sightings("c1"), TrackletConfig(**config), fps=10)
    return [(t.online_track, t.frames.tolist()) for t in tracklets]


def test_a_short_gap_keeps_the_track_whole_and_a_long_one_cuts_it():
    record = _record({f: [(1, 1, 2.0 * f)] for f in (0, 1, 3, 4, 9, 10)})
    assert _pieces(record, cut_gap_s=0.25) == [(1, [0, 1, 3, 4]), (1, [9, 10])]


def test_a_track_is_cut_at_a_jump_no_one_walks():
    record = _record({f: [(1, 1, 2.0 * f if f < 5 else 300.0 + 2 * f)] for f in range(10)})
    assert _pieces(record) == [(1, [0, 1, 2, 3, 4]), (1, [5, 6, 7, 8, 9])]


def test_each_piece_keeps_the_online_global_id_it_had_most():
    record = _record({f: [(1, 7 if f < 4 else 9, 2.0 * f)] for f in range(6)})
    (tracklet,) = split_tracks("c1", record.sightings("c1"), TrackletConfig(), fps=10)
    assert tracklet.online_global == 7


def test_a_track_is_cut_before_a_crop_of_someone_else():
    fit = ReidFit.from_distances(
        np.random.default_rng(0).normal(0.1, 0.03, 300), np.random.default_rng(1).normal(0.5, 0.05, 300)
    )
    red, blue = np.array([1.0, 0, 0], np.float32), np.array([0, 1.0, 0], np.float32)
    looks = {0: red, 3: red, 6: blue, 9: blue}  # the track passed to someone else between frames 3 and 6
    record = _record({f: [(1, 1, 2.0 * f)] for f in range(10)}, looks)
    cut = split_tracks("c1", record.sightings("c1"), TrackletConfig(), fps=10, fit=fit)
    assert [t.frames.tolist() for t in cut] == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9]]
    whole = split_tracks("c1", record.sightings("c1"), TrackletConfig(), fps=10)  # without a fit: nothing to judge by
    assert len(whole) == 1
