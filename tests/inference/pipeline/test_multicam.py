import numpy as np

from spoton_inference.core.geometry import Homography
from spoton_inference.pipeline.associate import AssociationConfig
from spoton_inference.pipeline.multicam import MultiCameraTracker
from spoton_inference.pipeline.track import TrackerConfig

# 100 px per metre, the map's origin at the image's
SCALE = Homography(np.diag([0.01, 0.01, 1.0]))


def _frame(mc: MultiCameraTracker, frame: int, boxes: dict[str, list], features: dict[str, list] | None = None):
    dets = {cam: (np.array(b, np.float32).reshape(-1, 4), np.full(len(b), 0.9, np.float32)) for cam, b in boxes.items()}
    plans = mc.plan(dets)
    wanted = {
        cam: {i: features[cam][i] for i in plan.needs_embedding} if features else {} for cam, plan in plans.items()
    }
    return mc.update(frame, plans, wanted)


def test_one_person_seen_by_two_cameras_gets_one_global_id_and_map_position():
    mc = MultiCameraTracker(["c1", "c2"], {"c1": SCALE, "c2": SCALE}, TrackerConfig(min_hits=1))
    out = _frame(mc, 0, {"c1": [[100, 0, 140, 200]], "c2": [[110, 0, 150, 205]]})
    (a,), (b,) = out["c1"], out["c2"]
    assert a.global_id == b.global_id
    assert a.map_xy == (1.2, 2.0)


def test_a_person_back_in_a_camera_gets_their_old_local_id():
    red = np.array([1.0, 0.0], np.float32)
    mc = MultiCameraTracker(
        ["c1"], {"c1": SCALE}, TrackerConfig(min_hits=1, max_age=3), AssociationConfig(fps=10, max_gap_s=60)
    )
    first = _frame(mc, 0, {"c1": [[100, 0, 140, 200]]}, {"c1": [red]})["c1"][0]
    for f in range(1, 30):  # out of view for 3 s, longer than the tracker keeps a lost track
        _frame(mc, f, {"c1": []})
    back = _frame(mc, 30, {"c1": [[150, 0, 190, 200]]}, {"c1": [red]})["c1"][0]
    assert (back.global_id, back.track_id) == (first.global_id, first.track_id)


def test_a_camera_s_own_detection_threshold_decides_which_detections_start_tracks():
    # The same person-sized box at score 0.6 on both cameras: c2's threshold of 0.8 refuses it.
    mc = MultiCameraTracker(
        ["c1", "c2"],
        {"c1": SCALE, "c2": SCALE},
        TrackerConfig(min_hits=1, high_score=0.45),
        track_start_scores={"c2": 0.8},
    )
    box = np.array([[100, 0, 140, 200]], np.float32)
    dets = {cam: (box, np.array([0.6], np.float32)) for cam in ("c1", "c2")}
    out = mc.update(0, mc.plan(dets), {"c1": {}, "c2": {}})
    assert len(out["c1"]) == 1 and out["c2"] == []


def test_local_ids_follow_people_when_review_finds_two_tracks_swapped():
    red, blue = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    # IoU alone keeps each track on its box, as after a crossing the tracker got wrong
    tracker = TrackerConfig(min_hits=1, refresh_every=1, appearance_weight=0.0, max_appearance_cost=2.0)
    mc = MultiCameraTracker(["c1"], {"c1": SCALE}, tracker, AssociationConfig(fps=10, review_after=3))
    boxes = {"c1": [[100, 0, 140, 200], [300, 0, 340, 200]]}
    left, right = _frame(mc, 0, boxes, {"c1": [red, blue]})["c1"]
    # from now on the person in the left box is the blue one, and the right box is red
    seen = [_frame(mc, f, boxes, {"c1": [blue, red]})["c1"] for f in range(1, 6)]
    assert [(t.track_id, t.global_id) for t in seen[0]] == [
        (left.track_id, left.global_id),
        (right.track_id, right.global_id),
    ]
    assert [(t.track_id, t.global_id) for t in seen[-1]] == [
        (right.track_id, right.global_id),
        (left.track_id, left.global_id),
    ]


def test_a_merge_of_two_identities_keeps_every_local_id():
    """A merge finds that two identities were one person all along: nobody's local id changes."""
    mc = MultiCameraTracker(
        ["c1", "c2"], {"c1": SCALE, "c2": SCALE}, TrackerConfig(min_hits=1), AssociationConfig(merge_after_frames=3)
    )
    # c2 sees the person standing at x = 3.5 m; c1 first sees them 1.5 m off (a bad foot point),
    # then closer, 0.1 m a frame
    seen = [
        _frame(mc, f, {"c1": [[180 + 10 * f, 0, 220 + 10 * f, 200]], "c2": [[330, 0, 370, 200]]}) for f in range(20)
    ]
    (first1,), (first2,) = seen[0]["c1"], seen[0]["c2"]
    (last1,), (last2,) = seen[-1]["c1"], seen[-1]["c2"]
    assert first1.global_id != first2.global_id
    assert last1.global_id == last2.global_id  # merged
    assert (last1.track_id, last2.track_id) == (first1.track_id, first2.track_id)
