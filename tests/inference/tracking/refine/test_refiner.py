"""The refinement pass end to end, on constructed online output."""

import numpy as np

from spoton_inference.tracking.calibration import ReidFit
from spoton_inference.tracking.refine.record import WindowRecord
from spoton_inference.tracking.refine.refiner import Refiner

FIT = ReidFit.from_distances(
    np.random.default_rng(0).normal(0.1, 0.04, 500), np.random.default_rng(1).normal(0.5, 0.08, 500)
)
RED, BLUE = np.array([1.0, 0, 0], np.float32), np.array([0, 1.0, 0], np.float32)


def _box(x: float) -> np.ndarray:
    return np.array([x, 0, x + 20, 60], np.float32)


def _feet(points: np.ndarray) -> np.ndarray:
    return points / 100.0  # 100 px a metre


def _walk(record: WindowRecord, cam: str, frames: range, x0: float, track: int, gid: int, look: np.ndarray) -> None:
    for f in frames:
        x = x0 + 5 * f
        record.add(cam, f, [(track, gid, _box(x), 0.9, ((x + 10) / 100, 0.6), look if f % 3 == 0 else None)])


def _ids(tracks, cam: str) -> set[tuple[int, int]]:
    return {(t.track_id, t.global_id) for t in tracks if t.camera_id == cam}


def test_a_person_lost_behind_an_occluder_comes_out_as_one_track_with_the_gap_filled():
    record = WindowRecord(["c1"])
    _walk(record, "c1", range(0, 25), 0, track=1, gid=1, look=RED)
    _walk(record, "c1", range(33, 50), 0, track=2, gid=2, look=RED)  # the online tracker lost them for 0.8 s
    (track,) = Refiner(10.0, {"c1": _feet}).refine(record, FIT)
    assert (track.track_id, track.global_id) == (1, 1)  # the online ids it carried most
    assert track.frames.tolist() == list(range(50))
    assert (track.scores[25:33] == 0).all()  # filled in
    assert np.allclose(track.map_xy[:, 0], (track.boxes[:, 0] + track.boxes[:, 2]) / 2 / 100)


def test_untouched_online_tracks_keep_their_ids():
    record = WindowRecord(["c1"])
    _walk(record, "c1", range(0, 30), 0, track=4, gid=9, look=RED)
    _walk(record, "c1", range(0, 30), 400, track=5, gid=3, look=BLUE)
    tracks = Refiner(10.0, {"c1": _feet}).refine(record, FIT)
    assert _ids(tracks, "c1") == {(4, 9), (5, 3)}


def test_a_person_keeps_their_refined_ids_into_the_next_window():
    refiner = Refiner(10.0, {"c1": _feet})
    first, second = WindowRecord(["c1"]), WindowRecord(["c1"])
    _walk(first, "c1", range(0, 20), 0, track=1, gid=1, look=RED)
    _walk(first, "c1", range(24, 30), 0, track=2, gid=2, look=RED)  # refined into track 1
    _walk(second, "c1", range(30, 50), 0, track=2, gid=2, look=RED)  # online, still track 2
    assert _ids(refiner.refine(first, FIT), "c1") == {(1, 1)}
    assert _ids(refiner.refine(second, FIT), "c1") == {(1, 1)}


def test_one_person_seen_by_two_cameras_at_once_gets_one_global_id():
    record = WindowRecord(["c1", "c2"])
    _walk(record, "c1", range(0, 30), 0, track=1, gid=1, look=RED)
    _walk(record, "c2", range(5, 30), 0, track=1, gid=2, look=RED)  # the online pass gave it another id
    _walk(record, "c2", range(0, 30), 500, track=2, gid=3, look=BLUE)
    tracks = Refiner(10.0, {"c1": _feet, "c2": _feet}).refine(record, FIT)
    gids = {t.camera_id + str(t.track_id): t.global_id for t in tracks}
    assert gids["c11"] == gids["c21"] != gids["c22"]


def test_a_refined_global_id_never_comes_to_mean_someone_else():
    """Online id 2 is refined into person 1; when online id 2 is later given to a new person
    (it cannot be here, but a refined id must never be reused), that person gets a fresh id."""
    refiner = Refiner(10.0, {"c1": _feet})
    first = WindowRecord(["c1"])
    _walk(first, "c1", range(0, 20), 0, track=1, gid=1, look=RED)
    _walk(first, "c1", range(24, 30), 0, track=2, gid=2, look=RED)
    refiner.refine(first, FIT)
    later = WindowRecord(["c1"])
    _walk(later, "c1", range(200, 220), -900, track=7, gid=1, look=BLUE)  # someone else, far off, much later
    (track,) = refiner.refine(later, FIT)
    assert track.global_id not in (1,)


def _one_box_per_frame(tracks) -> bool:
    seen = [(t.camera_id, t.track_id, int(f)) for t in tracks for f in t.frames]
    seen += [(t.camera_id, -t.global_id, int(f)) for t in tracks for f in t.frames]
    return len(seen) == len(set(seen))


def test_a_stray_piece_in_the_gap_of_a_linked_track_does_not_give_it_two_boxes_a_frame():
    """The online track loses the person for 0.8 s (frames 20-27); meanwhile a short track, on
    the same floor spot but with a box no walk leads to, is seen in the gap. Linking bridges the
    gap without it, grouping gives it to the person (one spot, nothing says otherwise): the gap
    is filled around its boxes, never on top of them."""
    record = WindowRecord(["c1"])
    for f in [*range(0, 20), *range(28, 50)]:
        x = 5 * f
        record.add("c1", f, [(1, 1, _box(x), 0.9, ((x + 10) / 100, 0.6), RED if f % 3 == 0 else None)])
    for f in (23, 24):
        x = 5 * f
        record.add("c1", f, [(2, 2, _box(x) + np.float32([0, 200, 0, 200]), 0.5, ((x + 10) / 100, 0.6), None)])
    tracks = Refiner(10.0, {"c1": _feet}).refine(record, FIT)
    assert _one_box_per_frame(tracks)
    person = next(t for t in tracks if 0 in t.frames)
    assert person.frames.tolist() == list(range(50))  # the gap is filled all the same
