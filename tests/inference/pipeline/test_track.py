import numpy as np

from spoton_inference.pipeline.kalman import BoxKalman
from spoton_inference.pipeline.track import CameraTracker, TrackerConfig, iou_matrix


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def _step(tracker: CameraTracker, boxes: list, scores: list, features: list | None = None):
    plan = tracker.plan(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32))
    embeddings = {i: features[i] for i in plan.needs_embedding} if features else {}
    return tracker.update(plan, embeddings)


def _walk(start_x: float, step: float, n: int) -> list[list[float]]:
    return [[start_x + i * step, 50, start_x + i * step + 40, 170] for i in range(n)]


def test_two_people_crossing_paths_keep_their_ids():
    tracker = CameraTracker(TrackerConfig(min_hits=1))
    a, b = _walk(0, 6, 30), _walk(300, -6, 30)
    red, blue = _unit([1, 0, 0]), _unit([0, 1, 0])
    first = {round(o.box[0]): o.track_id for o in _step(tracker, [a[0], b[0]], [0.9, 0.9], [red, blue])}
    for i in range(1, 30):
        if i == 12:  # b is missed for a frame, right where they overlap
            out = _step(tracker, [a[i]], [0.9], [red])
        else:
            out = _step(tracker, [a[i], b[i]], [0.9, 0.9], [red, blue])
    last = {round(o.box[0]): o.track_id for o in out}
    assert last[round(a[-1][0])] == first[0]
    assert last[round(b[-1][0])] == first[300]


def test_state_machine_birth_confirmation_loss_and_removal():
    tracker = CameraTracker(TrackerConfig(min_hits=3, max_age=2))
    box = [[10, 10, 50, 120]]
    assert _step(tracker, box, [0.9]) == []  # born, tentative
    assert _step(tracker, box, [0.9]) == []
    confirmed = _step(tracker, box, [0.9])
    assert len(confirmed) == 1 and confirmed[0].is_new
    assert not _step(tracker, box, [0.9])[0].is_new  # reported once as new
    for _ in range(3):  # lost longer than max_age: removed
        assert _step(tracker, [], []) == []
    for _ in range(3):
        again = _step(tracker, box, [0.9])
    assert again[0].track_id != confirmed[0].track_id


def test_a_track_lost_for_a_few_frames_is_re_found_with_its_id():
    tracker = CameraTracker(TrackerConfig(min_hits=1))
    path = _walk(0, 5, 20)
    ids = {o.track_id for i in range(8) for o in _step(tracker, [path[i]], [0.9])}
    for _ in range(3):  # occluded: no detection
        _step(tracker, [], [])
    refound = _step(tracker, [path[11]], [0.9])
    assert {o.track_id for o in refound} == ids


def test_weak_detections_extend_a_track_but_never_start_one():
    tracker = CameraTracker(TrackerConfig(min_hits=1, high_score=0.5, low_score=0.1))
    box = [[10, 10, 50, 120]]
    assert _step(tracker, box, [0.3]) == []
    first = _step(tracker, box, [0.9])[0].track_id
    partly_hidden = _step(tracker, [[11, 11, 51, 121]], [0.2])
    assert [t.track_id for t in partly_hidden] == [first]


def test_a_weak_detection_of_someone_else_does_not_extend_a_track():
    """The person behind a passer-by: the passer-by's partly hidden, low-score box stands where
    the track is predicted, but looks like someone else, so the track waits instead."""
    tracker = CameraTracker(TrackerConfig(min_hits=1, high_score=0.5, low_score=0.1, low_score_veto=True))
    red, pinkish, blue = _unit([1, 0, 0]), _unit([1, 0.2, 0]), _unit([0, 1, 0])
    first = _step(tracker, [[10, 10, 50, 120]], [0.9], [red])[0].track_id
    # a weak box looking like the track's person extends it; its partly hidden crop does not
    # change what the track looks like
    (extended,) = _step(tracker, [[11, 11, 51, 121]], [0.2], [pinkish])
    assert extended.track_id == first and np.allclose(extended.feature, red)
    assert _step(tracker, [[12, 11, 52, 121]], [0.2], [blue]) == []


def test_a_lost_track_is_re_found_far_off_only_by_someone_who_looks_like_them():
    red, half_like = _unit([1, 0]), _unit([0.725, 0.689])  # calibrated appearance cost about 0.5
    for crop, refound in ((red, True), (half_like, False)):
        tracker = CameraTracker(TrackerConfig(min_hits=1))
        first = _step(tracker, [[10, 10, 50, 120]], [0.9], [red])[0].track_id
        assert _step(tracker, [], []) == []  # missed
        # 30 px off: too far for IoU, within the re-find reach
        (back,) = _step(tracker, [[40, 10, 80, 120]], [0.9], [crop])
        assert (back.track_id == first) is refound


def test_with_the_veto_a_weak_detection_that_looks_right_re_finds_a_track_lost_for_a_frame():
    red = _unit([1, 0, 0])
    for veto in (False, True):
        tracker = CameraTracker(TrackerConfig(min_hits=1, high_score=0.5, low_score=0.1, low_score_veto=veto))
        first = _step(tracker, [[10, 10, 50, 120]], [0.9], [red])[0].track_id
        assert _step(tracker, [], []) == []  # missed
        back = _step(tracker, [[11, 11, 51, 121]], [0.2], [red])
        assert [t.track_id for t in back] == ([first] if veto else [])


def test_weak_detections_are_embedded_only_with_the_veto():
    """The veto costs embeddings: off (the default), weak detections are never cropped."""
    for veto, expected in ((False, ()), (True, (0,))):
        tracker = CameraTracker(TrackerConfig(min_hits=1, high_score=0.5, low_score=0.1, low_score_veto=veto))
        _step(tracker, [[10, 10, 50, 120]], [0.9], [_unit([1, 0])])
        plan = tracker.plan(np.array([[11, 11, 51, 121]], np.float32), np.array([0.2], np.float32))
        assert plan.needs_embedding == expected


def _embedding_plans(tracker: CameraTracker, boxes: list, frames: int) -> list[tuple[int, ...]]:
    features = [_unit([1, i]) for i in range(len(boxes))]
    plans = []
    for _ in range(frames):
        plan = tracker.plan(np.array(boxes, np.float32), np.array([0.9] * len(boxes), np.float32))
        plans.append(plan.needs_embedding)
        tracker.update(plan, {i: features[i] for i in plan.needs_embedding})
    return plans


def test_only_new_young_uncertain_or_stale_detections_are_embedded():
    tracker = CameraTracker(TrackerConfig(min_hits=1, refresh_every=3, young_hits=3))
    # new, then young (1 and 2 hits), then confidently matched, then refreshed every 3 frames
    assert _embedding_plans(tracker, [[10, 10, 50, 120]], 9) == [(0,), (0,), (0,), (), (), (0,), (), (), (0,)]


def test_overlapping_people_are_embedded_every_frame():
    tracker = CameraTracker(TrackerConfig(min_hits=1, refresh_every=100, young_hits=1, crowd_iou=0.1))
    apart = _embedding_plans(tracker, [[10, 10, 50, 120], [200, 10, 240, 120]], 4)
    assert apart[1:] == [(), (), ()]
    tracker = CameraTracker(TrackerConfig(min_hits=1, refresh_every=100, young_hits=1, crowd_iou=0.1))
    overlapping = _embedding_plans(tracker, [[10, 10, 50, 120], [35, 10, 75, 120]], 4)
    assert overlapping[1:] == [(0, 1)] * 3


def test_a_track_back_after_a_miss_is_embedded_again():
    # Whoever steps out of an occlusion where a track was lost may be someone else: look.
    tracker = CameraTracker(TrackerConfig(min_hits=1, refresh_every=100, young_hits=1))
    assert _embedding_plans(tracker, [[10, 10, 50, 120]], 3)[1:] == [(), ()]
    tracker.update(tracker.plan(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)), {})  # missed
    assert _embedding_plans(tracker, [[10, 10, 50, 120]], 2) == [(0,), ()]


def test_appearance_vetoes_an_iou_match_to_someone_else():
    tracker = CameraTracker(TrackerConfig(min_hits=1, young_hits=5))
    red, blue = _unit([1, 0, 0]), _unit([0, 1, 0])
    first = _step(tracker, [[10, 10, 50, 120]], [0.9], [red])[0].track_id
    # the red person is missed and a blue one stands where they were
    swapped = _step(tracker, [[12, 10, 52, 120]], [0.9], [blue])
    assert [t.track_id for t in swapped] != [first]


def test_relabel_gives_a_new_track_the_id_of_a_lost_one_once():
    tracker = CameraTracker(TrackerConfig(min_hits=1, max_age=50))
    old = _step(tracker, [[10, 10, 50, 120]], [0.9])[0].track_id
    for _ in range(5):
        _step(tracker, [], [])
    new = _step(tracker, [[400, 10, 440, 120]], [0.9])[0].track_id
    assert new != old
    assert tracker.relabel(new, old)
    assert [t.track_id for t in _step(tracker, [[402, 10, 442, 120]], [0.9])] == [old]
    # a track already reported under its own id for a while keeps it
    for _ in range(5):
        _step(tracker, [[402, 10, 442, 120]], [0.9])
    assert not tracker.relabel(old, 99)


def test_kalman_follows_constant_motion():
    kf = BoxKalman.start(np.array([0.0, 0.0, 40.0, 120.0]))
    for i in range(1, 10):
        kf.predict()
        kf.update(np.array([5.0 * i, 0.0, 5.0 * i + 40, 120.0]))
    kf.predict()
    assert abs(kf.box()[0] - 50.0) < 2.0


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    assert np.allclose(iou_matrix(a, b), [[1.0, 1 / 3, 0.0]])


def test_renumbering_and_exchanging_ids_keep_each_track_on_its_box():
    tracker = CameraTracker(TrackerConfig(min_hits=1))
    a, b = (t.track_id for t in _step(tracker, [[10, 10, 50, 120], [200, 10, 240, 120]], [0.9, 0.9]))
    tracker.exchange_ids(a, b)
    assert [t.track_id for t in _step(tracker, [[10, 10, 50, 120], [200, 10, 240, 120]], [0.9, 0.9])] == [b, a]
    fresh = tracker.renumber(a)
    assert fresh not in (a, b)
    assert tracker.track_ids == {b, fresh}
    assert [t.track_id for t in _step(tracker, [[10, 10, 50, 120], [200, 10, 240, 120]], [0.9, 0.9])] == [b, fresh]
