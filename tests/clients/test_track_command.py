"""`spoton track`'s refusals: each says what is wrong before any stack is started or called."""

from __future__ import annotations

import json
import re

import pytest

from spoton_client.cli import main
from spoton_client.track import TrackInputError, _folder_cameras


def _refusal(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main(["track", *argv])
    assert done.value.code == 2
    return capsys.readouterr().err


def test_a_missing_source_is_named(tmp_path, capsys):
    err = _refusal([str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "out")], capsys)
    assert "nope.mp4 does not exist" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--fps", "0"], "--fps must be positive"),
        (["--duration", "5"], "--duration is for live sources"),
        (["--homography", "{h}"], "a homography needs at least 4 point pairs, got 2"),
        (["--homography", "{two}"], "one video is one camera"),
    ],
)
def test_bad_options_are_explained(tmp_path, capsys, options, message):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not checked here: the server decodes it")
    h = tmp_path / "h.json"
    h.write_text(json.dumps({"image_points": [[0, 0], [1, 1]], "map_points": [[0, 0], [1, 1]]}))
    square = {"image_points": [[0, 0], [9, 0], [9, 9], [0, 9]], "map_points": [[0, 0], [1, 0], [1, 1], [0, 1]]}
    two = tmp_path / "two.json"
    two.write_text(json.dumps({"c01": square, "c02": square}))
    argv = [str(video), "--out", str(tmp_path / "out"), *(o.format(h=h, two=two) for o in options)]
    assert message in _refusal(argv, capsys)


def test_a_folder_needs_videos_and_a_local_stack(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no video here")
    assert "no videos in" in _refusal([str(tmp_path), "--out", str(tmp_path / "out")], capsys)
    (tmp_path / "c01.mp4").write_bytes(b"x")
    err = _refusal([str(tmp_path), "--out", str(tmp_path / "out"), "--target", "10.0.0.1:50051"], capsys)
    assert "needs a stack on this machine" in err


def test_folder_videos_become_cameras_named_by_file(tmp_path):
    for name in ("c01.mp4", "Gate 2.AVI", "readme.md"):
        (tmp_path / name).write_bytes(b"x")
    assert {cam: p.name for cam, p in _folder_cameras(tmp_path).items()} == {"Gate_2": "Gate 2.AVI", "c01": "c01.mp4"}
    (tmp_path / "c01.mkv").write_bytes(b"x")
    with pytest.raises(TrackInputError, match=re.escape("c01.mkv and c01.mp4 would both be camera 'c01'")):
        _folder_cameras(tmp_path)
