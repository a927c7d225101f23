import json

import cv2
import numpy as np
import pytest

from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.files.environment_dir import load_environment_dir

H = {"image_points": [[0, 360], [640, 360], [640, 0], [0, 0]], "map_points": [[0, 0], [8, 0], [8, 6], [0, 6]]}


def _video(path, frames: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(frames):
        out.write(np.full((48, 64, 3), i * 10, np.uint8))
    out.release()


def _env(tmp_path, doc: object) -> None:
    (tmp_path / "environment.json").write_text(json.dumps(doc))


def test_loads_cameras_sub_videos_in_batch_order_and_homography(tmp_path):
    _env(tmp_path, {"id": "site", "name": "Site", "cameras": [{"id": "c1", "fps": 10, "homography": H}]})
    for n, frames in ((2, 4), (1, 5), (10, 3)):
        _video(tmp_path / "cameras" / "c1" / f"sub_video_{n:02d}.mp4", frames)
    env = load_environment_dir(tmp_path)
    cam = env.cameras[0]
    assert [s.filename for s in cam.sub_videos] == ["sub_video_01.mp4", "sub_video_02.mp4", "sub_video_10.mp4"]
    assert [s.num_frames for s in cam.sub_videos] == [5, 4, 3]
    assert (cam.width, cam.height) == (64, 48)
    assert np.allclose(cam.homography.project_points([[640, 0]]), [[8, 6]])


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "JSON object"),
        ({"id": "../x", "cameras": [{"id": "c1", "fps": 10}]}, "environment id"),
        ({"id": "s", "cameras": []}, "non-empty"),
        ({"id": "s", "cameras": [{"id": "c1", "fps": 10}, {"id": "c1", "fps": 10}]}, "unique"),
        (
            {
                "id": "s",
                "cameras": [{"id": "c1", "fps": 10, "homography": {"image_points": [[0, 0]], "map_points": [[0, 0]]}}],
            },
            "c1",
        ),
        ({"id": "s", "cameras": [{"id": "c1"}]}, "fps"),
    ],
)
def test_bad_environment_is_refused_with_a_reason(tmp_path, doc, message):
    _env(tmp_path, doc)
    with pytest.raises(InvalidArgument, match=message):
        load_environment_dir(tmp_path)


def test_unreadable_video_is_refused(tmp_path):
    _env(tmp_path, {"id": "s", "cameras": [{"id": "c1", "fps": 10}]})
    bad = tmp_path / "cameras" / "c1" / "sub_video_01.mp4"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a video")
    with pytest.raises(InvalidArgument, match="not a readable video"):
        load_environment_dir(tmp_path)
