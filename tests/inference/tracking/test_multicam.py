import numpy as np

from spoton_inference.domain.geometry import Homography
from spoton_inference.tracking.appearance import ReidCalibration
from spoton_inference.tracking.camera import TrackerConfig
from spoton_inference.tracking.identities import AssociationConfig
from spoton_inference.tracking.multicam import MultiCameraTracker

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


def test_the_trackers_calibrate_themselves_on_the_stream_s_own_crops():
    """Two people walking apart in one camera: the fitted same and different distances land on
    what their crops show, far from the configured prior, and the trackers use them."""
    rng = np.random.default_rng(0)
    base = [_unit_vector(rng) for _ in range(2)]
    prior = ReidCalibration(0.5, 0.9)
    mc = MultiCameraTracker(["c1"], {"c1": SCALE}, TrackerConfig(min_hits=1, refresh_every=1, calibration=prior))
    same, different = [], []
    previous = None
    for f in range(400):
        boxes = {"c1": [[100 + f, 0, 140 + f, 200], [900 - f, 0, 940 - f, 200]]}
        crops = [_unit(b + 0.05 * rng.standard_normal(len(b))) for b in base]
        _frame(mc, f, boxes, {"c1": crops})
        different.append(1 - float(crops[0] @ crops[1]))
        if previous is not None:
            same.append(1 - float(crops[0] @ previous))
        previous = crops[0]
    fit = mc.fit
    assert fit.same_pairs > 300 and fit.different_pairs > 300
    assert abs(fit.calibration.same - np.median(same)) < 0.02 < abs(prior.same - np.median(same))
    assert abs(fit.calibration.different - np.median(different)) < 0.02
    assert mc.cameras.calibration("c1") == fit.calibration


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _unit_vector(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(16)
    return v / np.linalg.norm(v)
