import json

import numpy as np

from spoton_inference.domain.events import CameraTracksOut, TrackingUpdate, TrackOut
from spoton_inference.pipeline.exports import ExportWriter


def _update(frame: int, cams: dict[str, list[tuple[int, int]]]) -> TrackingUpdate:
    return TrackingUpdate(
        frame,
        "env",
        0.0,
        [
            CameraTracksOut(
                cam, "sub_video_01.mp4", frame, [TrackOut((10, 20, 50, 120), 0.9, t, g, (1.0, 2.0)) for t, g in tracks]
            )
            for cam, tracks in cams.items()
        ],
    )


def test_mot_files_trajectories_and_events(tmp_path):
    w = ExportWriter(tmp_path, ["c1", "c2"], fps=10, leave_after_frames=2)
    w.add_detections("c1", 0, np.array([[10.0, 20.0, 50.0, 120.0]]), np.array([0.25]))
    w.add(_update(0, {"c1": [(1, 7)], "c2": []}))
    w.add(_update(1, {"c1": [(1, 7)], "c2": []}))
    for f in range(2, 6):  # person 7 walks from c1 into c2
        w.add(_update(f, {"c1": [], "c2": [(3, 7)]}))
    files = {p.name for p in w.close()}
    assert files == {
        *(f"{c}.{kind}.txt" for c in ("c1", "c2") for kind in ("global", "local", "detections")),
        "trajectories.csv",
        "events.json",
    }
    assert (tmp_path / "c1.detections.txt").read_text() == "1,-1,10.00,20.00,40.00,100.00,0.2500,-1,-1,-1\n"

    assert (tmp_path / "c1.global.txt").read_text().splitlines()[0] == "1,7,10.00,20.00,40.00,100.00,0.9000,-1,-1,-1"
    assert (tmp_path / "c2.local.txt").read_text().splitlines()[0].startswith("3,3,")
    traj = (tmp_path / "trajectories.csv").read_text().splitlines()
    assert traj[0] == "frame,global_id,map_x,map_y" and traj[1] == "1,7,1.0000,2.0000"

    events = json.loads((tmp_path / "events.json").read_text())["events"]
    kinds = [(e["type"], e["camera_id"], e["frame"]) for e in events]
    assert ("appeared", "c1", 1) in kinds
    assert ("handover", "c2", 3) in kinds
    assert ("left", "c1", 2) in kinds
    assert ("left", "c2", 6) in kinds


def test_zone_events_are_exported_in_frame_order(tmp_path):
    writer = ExportWriter(tmp_path, ["c01"], fps=10.0)
    writer.add_zone_event("zone_enter", 7, "c01", 3, "door", "Door", (1.23456, 2.0))
    writer.add_zone_event("zone_exit", 4, "c01", 3, "door", "Door", (1.0, 2.0))
    writer.close()
    events = json.loads((tmp_path / "events.json").read_text())["events"]
    assert events == [
        {
            "type": "zone_exit",
            "frame": 5,
            "time_s": 0.4,
            "camera_id": "c01",
            "global_id": 3,
            "zone_id": "door",
            "zone_name": "Door",
            "map_xy": [1.0, 2.0],
        },
        {
            "type": "zone_enter",
            "frame": 8,
            "time_s": 0.7,
            "camera_id": "c01",
            "global_id": 3,
            "zone_id": "door",
            "zone_name": "Door",
            "map_xy": [1.2346, 2.0],
        },
    ]
