"""The per-camera tracker: its states, each association stage, and what it embeds."""

import numpy as np

from spoton_inference.tracking.camera import STAGES, CameraTracker, TrackerConfig, TrackState


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def _step(tracker: CameraTracker, boxes: list, scores: list, features: list | None = None):
    plan = tracker.plan(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32))
    embeddings = {i: features[i] for i in plan.needs_embedding} if features else {}
    return tracker.update(plan, embeddings)


def _walk(start_x: float, step: float, n: int) -> list[list[float]]:
    return [[start_x + i * step, 50, start_x + i * step + 40, 170] for i in range(n)]


def test_the_stages_run_in_their_declared_order():
    assert [s.name for s in STAGES] == ["confident", "weak", "refind"]


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


def test_states_tentative_confirmed_lost_removed():
    tracker = CameraTracker(TrackerConfig(min_hits=3, max_lost_s=0.2))
    box = [[10, 10, 50, 120]]
    assert _step(tracker, box, [0.9]) == []
    assert [t.state for t in tracker.tracks] == [TrackState.TENTATIVE]
    assert _step(tracker, box, [0.9]) == []
    confirmed = _step(tracker, box, [0.9])
    assert len(confirmed) == 1 and confirmed[0].is_new
    assert [t.state for t in tracker.tracks] == [TrackState.CONFIRMED]
    assert not _step(tracker, box, [0.9])[0].is_new  # reported once as new
    assert _step(tracker, [], []) == []
    assert [t.state for t in tracker.tracks] == [TrackState.LOST]
    for _ in range(2):  # lost longer than max_lost_s (two frames at 10 frames/s): removed
        _step(tracker, [], [])
    assert tracker.tracks == []


def test_a_tentative_track_missed_once_is_dropped():
    tracker = CameraTracker(TrackerConfig(min_hits=2))
    _step(tracker, [[10, 10, 50, 120]], [0.9])  # a one-frame false positive
    _step(tracker, [], [])
    assert tracker.tracks == []


def test_reported_boxes_are_the_detections_own():
    tracker = CameraTracker(TrackerConfig(min_hits=1))
    for box in _walk(0, 8, 6):
        (out,) = _step(tracker, [box], [0.9])
        assert out.box.tolist() == box


def test_weak_detections_extend_a_track_but_never_start_one():
    tracker = CameraTracker(TrackerConfig(min_hits=1, high_score=0.5, low_score=0.1))
    box = [[10, 10, 50, 120]]
    assert _step(tracker, box, [0.3]) == []
    first = _step(tracker, box, [0.9])[0].track_id
    partly_hidden = _step(tracker, [[11, 11, 51, 121]], [0.2])
    assert [t.track_id for t in partly_hidden] == [first]


def test_a_weak_detection_does_not_teach_the_track_its_appearance():
    tracker = CameraTracker(TrackerConfig(min_hits=1, high_score=0.5, low_score=0.1))
    red, blue = _unit([1, 0, 0]), _unit([0, 1, 0])
    _step(tracker, [[10, 10, 50, 120]], [0.9], [red])
    (extended,) = tracker.update(
        tracker.plan(np.array([[11, 11, 51, 121]], np.float32), np.array([0.2], np.float32)), {0: blue}
    )
    assert np.allclose(extended.feature, red) and extended.crop is None


def test_a_lost_track_is_re_found_far_off_only_by_someone_who_looks_like_them():
    red, half_like = _unit([1, 0]), _unit([0.725, 0.689])  # calibrated appearance cost about 0.5
    for crop, refound in ((red, True), (half_like, False)):
        tracker = CameraTracker(TrackerConfig(min_hits=1))
        first = _step(tracker, [[10, 10, 50, 120]], [0.9], [red])[0].track_id
        assert _step(tracker, [], []) == []  # missed
        # 30 px off: too far for IoU, within the re-find reach
        (back,) = _step(tracker, [[40, 10, 80, 120]], [0.9], [crop])
        assert (back.track_id == first) is refound


def test_a_track_found_again_after_a_gap_goes_on_at_the_speed_it_had_over_the_gap():
    tracker = CameraTracker(TrackerConfig(min_hits=1, max_lost_s=3.0))
    walk = _walk(0, 5, 40)
    for box in walk[:5]:
        _step(tracker, [box], [0.9])
    for _ in range(5):  # unseen
        _step(tracker, [], [])
    _step(tracker, [walk[10]], [0.9])
    plan = tracker.plan(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    # the next prediction moves on about 5 px, as the person did over the gap
    assert abs(plan.predicted[0][0] - walk[11][0]) < 2.0


def test_appearance_vetoes_an_overlap_with_someone_else():
    tracker = CameraTracker(TrackerConfig(min_hits=1, young_hits=5))
    red, blue = _unit([1, 0, 0]), _unit([0, 1, 0])
    first = _step(tracker, [[10, 10, 50, 120]], [0.9], [red])[0].track_id
    # the red person is missed and a blue one stands where they were
    swapped = _step(tracker, [[12, 10, 52, 120]], [0.9], [blue])
    assert [t.track_id for t in swapped] != [first]


def test_the_direction_of_travel_breaks_a_tie_between_two_detections():
    """Two detections either side of where a walker is predicted: one carries on the way they
    walk, the other, a little nearer, would turn them back. Overlap alone takes the nearer."""
    for weight, expected in ((0.0, "behind"), (0.5, "ahead")):
        tracker = CameraTracker(TrackerConfig(min_hits=1, direction_weight=weight))
        for box in _walk(0, 10, 6):  # last seen at x = 50, walking right
            (out,) = _step(tracker, [box], [0.9])
        x = 59.75  # where the filter predicts the walker next
        boxes = {"ahead": [x + 12, 50, x + 52, 170], "behind": [x - 11, 50, x + 29, 170]}
        chosen = [
            o for o in _step(tracker, [boxes["behind"], boxes["ahead"]], [0.9, 0.9]) if o.track_id == out.track_id
        ]
        assert [round(o.box[0], 2) for o in chosen] == [boxes[expected][0]]


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
