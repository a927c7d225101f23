import numpy as np

from spoton_inference.pipeline.track import IouTracker, TrackerConfig, iou_matrix


def _walk(start_x: float, step: float, n: int) -> list[np.ndarray]:
    return [np.array([start_x + i * step, 50, start_x + i * step + 40, 170], np.float32) for i in range(n)]


def test_two_people_crossing_paths_keep_their_ids():
    tracker = IouTracker(TrackerConfig(min_hits=1))
    a, b = _walk(0, 6, 30), _walk(300, -6, 30)
    ids = []
    for i in range(30):
        # a detection gap for one frame must not break the track
        boxes = [a[i]] + ([b[i]] if i != 12 else [])
        out = tracker.update(np.stack(boxes), np.full(len(boxes), 0.9, np.float32))
        ids.append({round(float(o.box[0])): o.track_id for o in out})
    first = ids[0]
    assert len(set(first.values())) == 2
    id_a = first[0]
    id_b = first[300]
    last = ids[-1]
    assert last[round(float(a[-1][0]))] == id_a
    assert last[round(float(b[-1][0]))] == id_b


def test_track_needs_confirmation_before_it_is_reported():
    tracker = IouTracker(TrackerConfig(min_hits=3))
    box = np.array([[10, 10, 50, 120]], np.float32)
    score = np.array([0.9], np.float32)
    assert tracker.update(box, score) == []
    assert tracker.update(box, score) == []
    out = tracker.update(box, score)
    assert len(out) == 1 and out[0].is_new
    assert not tracker.update(box, score)[0].is_new


def test_lost_track_is_dropped_after_max_age():
    tracker = IouTracker(TrackerConfig(min_hits=1, max_age=2))
    box = np.array([[10, 10, 50, 120]], np.float32)
    first = tracker.update(box, np.array([0.9], np.float32))[0].track_id
    for _ in range(4):
        tracker.update(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    again = tracker.update(box, np.array([0.9], np.float32))
    assert again[0].track_id != first


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    assert np.allclose(iou_matrix(a, b), [[1.0, 1 / 3, 0.0]])


def test_weak_detections_extend_a_track_but_never_start_one():
    tracker = IouTracker(TrackerConfig(min_hits=1, high_score=0.5, low_score=0.1))
    box = np.array([[10, 10, 50, 120]], np.float32)
    assert tracker.update(box, np.array([0.3], np.float32)) == []
    first = tracker.update(box, np.array([0.9], np.float32))[0].track_id
    partly_hidden = tracker.update(box + 1, np.array([0.2], np.float32))
    assert [t.track_id for t in partly_hidden] == [first]
