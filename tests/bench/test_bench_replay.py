"""The perfect-Re-ID replay: ground-truth features, and the core replayed on exported detections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from accuracy_lib.motfile import FrameDetections
from accuracy_lib.replay import ground_truth_features, perfect_reid_setup, replay

from spoton_client.scoring import read_mot
from spoton_inference.domain.environment import Camera, Environment, FloorMap


def _gt(path: Path, rows: list[tuple[int, int, list[float]]]) -> None:
    path.write_text("".join(f"{f},{i},{x},{y},{w},{h},1,-1,-1,-1\n" for f, i, (x, y, w, h) in rows))


def test_ground_truth_features_follow_the_person_across_cameras(tmp_path: Path):
    _gt(tmp_path / "c1.txt", [(1, 7, [0, 0, 40, 100]), (1, 8, [200, 0, 40, 100])])
    _gt(tmp_path / "c2.txt", [(1, 7, [300, 0, 40, 100])])
    dets = {
        "c1": {
            1: FrameDetections(np.array([[1, 0, 40, 100], [201, 0, 40, 100], [500, 0, 40, 100]], float), np.ones(3))
        },
        "c2": {1: FrameDetections(np.array([[300, 1, 40, 100]], float), np.ones(1))},
    }
    f = ground_truth_features(tmp_path, dets)
    person7_c1, person8, false_positive = f["c1"][1]
    assert np.allclose(person7_c1, f["c2"][1][0])
    assert abs(float(person7_c1 @ person8)) < 0.6 and abs(float(person7_c1 @ false_positive)) < 0.6
    assert np.allclose(np.linalg.norm(f["c1"][1], axis=1), 1.0)


def test_replay_writes_online_and_refined_mot_files(tmp_path: Path):
    camera = Camera(camera_id="c1", name="c1", fps=10.0, width=640, height=480, homography=None)
    env = Environment(environment_id="e", name="e", floor_map=FloorMap(), cameras=(camera,))
    walk = {f: FrameDetections(np.array([[10.0 + 3 * f, 0, 40, 100]]), np.array([0.9])) for f in range(1, 11)}
    feature = np.array([[1.0, 0.0]], np.float32)
    timing = replay(env, {"c1": walk}, {"c1": {f: feature for f in walk}}, tmp_path, perfect_reid_setup(0.45, 10.0))
    online = read_mot(tmp_path / "c1.online.local.txt")
    local, glob = read_mot(tmp_path / "c1.local.txt"), read_mot(tmp_path / "c1.global.txt")
    # confirmed on the second hit (TrackerConfig.min_hits), then one id throughout, online and refined
    assert sorted(online) == list(range(2, 11))
    assert sorted(local) == list(range(2, 11))
    assert {int(i) for ids, _ in local.values() for i in ids} == {1}
    assert {int(i) for ids, _ in glob.values() for i in ids} == {1}
    assert len(timing.refine_s) == 1  # one window: the whole (unbatched) scene


def test_the_replay_names_every_export_where_an_id_has_two_boxes_in_one_frame(tmp_path: Path):
    from replay import repeated_ids

    (tmp_path / "c1.local.txt").write_text("1,5,0,0,10,30,1,-1,-1,-1\n2,5,0,0,10,30,1,-1,-1,-1\n")
    (tmp_path / "c1.online.global.txt").write_text(
        "1,5,0,0,10,30,1,-1,-1,-1\n1,6,40,0,10,30,1,-1,-1,-1\n3,5,0,0,10,30,1,-1,-1,-1\n3,5,40,0,10,30,1,-1,-1,-1\n"
    )
    assert repeated_ids(tmp_path, ["c1"]) == ["c1.online.global.txt: id repeated within a frame in 1 frames, first 3"]
