"""The generated scene directory: layout, determinism, calibration and ground truth."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from spoton_inference.scenes import SceneConfig

GROUND_TRUTH_FILES = ("map_positions.csv", "visibility.csv")


def _environment(scene: Path) -> dict:
    return json.loads((scene / "environment.json").read_text())


def _mot_rows(scene: Path, camera_id: str) -> list[list[int]]:
    text = (scene / "ground_truth" / f"{camera_id}.txt").read_text()
    return [[int(value) for value in line.split(",")] for line in text.splitlines()]


def _csv(scene: Path, name: str) -> list[dict[str, str]]:
    with (scene / "ground_truth" / name).open() as file:
        return list(csv.DictReader(file))


def _decoded_frames(path: Path) -> tuple[int, int]:
    """(frames decoded one by one, frames the container announces)."""
    capture = cv2.VideoCapture(str(path))
    announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    decoded = 0
    while capture.read()[0]:
        decoded += 1
    capture.release()
    return decoded, announced


@pytest.fixture(params=["tiny", "knobby"])
def scene(request: pytest.FixtureRequest) -> tuple[Path, SceneConfig]:
    """The plain tiny scene and the one with every difficulty knob turned up: both keep the format."""
    return request.getfixturevalue(f"{request.param}_scene"), request.getfixturevalue(f"{request.param}_config")


def test_layout_and_environment_document(scene: tuple[Path, SceneConfig]):
    directory, config = scene
    environment = _environment(directory)
    assert environment["id"] == config.env_id
    assert environment["map"] == {"image": "map.png", "metres_per_pixel": config.metres_per_pixel}
    assert [camera["id"] for camera in environment["cameras"]] == [spec.id for spec in config.cameras]
    for camera in environment["cameras"]:
        assert (camera["fps"], camera["width"], camera["height"]) == (config.fps, 320, 240)
        pairs = camera["homography"]
        assert len(pairs["image_points"]) == len(pairs["map_points"]) >= 4
        videos = sorted(path.name for path in (directory / "cameras" / camera["id"]).iterdir())
        assert videos == ["sub_video_01.mp4", "sub_video_02.mp4"]
        assert (directory / "ground_truth" / f"{camera['id']}.txt").is_file()
    plan = cv2.imread(str(directory / "map.png"))
    metres = np.array(plan.shape[1::-1]) * config.metres_per_pixel
    np.testing.assert_allclose(metres, config.world_size)


@pytest.mark.parametrize("name", ["tiny", "knobby"])
def test_same_seed_gives_identical_bytes(name: str, request: pytest.FixtureRequest):
    first, second = request.getfixturevalue(f"{name}_scene"), request.getfixturevalue(f"{name}_scene_again")
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file())
    # Videos included (see spoton_inference.scenes.video for what that takes).
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative


def test_another_seed_gives_another_scene(tiny_scene: Path, other_seed_scene: Path):
    for name in GROUND_TRUTH_FILES:
        assert (tiny_scene / "ground_truth" / name).read_bytes() != (
            other_seed_scene / "ground_truth" / name
        ).read_bytes()


def test_every_batch_decodes_to_the_same_number_of_frames(scene: tuple[Path, SceneConfig]):
    directory, config = scene
    for spec in config.cameras:
        for video in sorted((directory / "cameras" / spec.id).glob("*.mp4")):
            assert _decoded_frames(video) == (config.frames_per_batch, config.frames_per_batch), video


def test_mot_rows_are_well_formed_global_frames(scene: tuple[Path, SceneConfig]):
    directory, config = scene
    for spec in config.cameras:
        rows = _mot_rows(directory, spec.id)
        for frame, person_id, x, y, w, h, *tail in rows:
            assert tail == [1, -1, -1, -1]
            assert 1 <= frame <= config.total_frames
            assert 1 <= person_id <= config.n_people
            assert x >= 0 and y >= 0 and x + w <= spec.width and y + h <= spec.height
            assert h >= config.min_box_height_px
        assert rows == sorted(rows, key=lambda row: (row[0], row[1]))
    # Frames of the second batch exist, so batches continue the global count.
    frames = {row[0] for spec in config.cameras for row in _mot_rows(directory, spec.id)}
    assert max(frames) > config.frames_per_batch


def test_map_positions_cover_everyone_every_frame(scene: tuple[Path, SceneConfig]):
    directory, config = scene
    rows = _csv(directory, "map_positions.csv")
    keys = {(int(row["frame"]), int(row["person_id"])) for row in rows}
    assert len(rows) == len(keys) == config.total_frames * config.n_people
    for row in rows:
        assert 0 <= float(row["map_x"]) <= config.world_size[0]
        assert 0 <= float(row["map_y"]) <= config.world_size[1]


def test_visibility_file_agrees_with_the_mot_files(scene: tuple[Path, SceneConfig]):
    directory, config = scene
    annotated = defaultdict(list)
    for row in _csv(directory, "visibility.csv"):
        assert 0.0 <= float(row["visible"]) <= float(row["in_frame"]) <= 1.0
        if row["annotated"] == "1":
            assert float(row["visible"]) >= config.min_visible_fraction
            box = [int(row[key]) for key in ("x", "y", "w", "h")]
            annotated[row["camera_id"]].append([int(row["frame"]), int(row["person_id"]), *box, 1, -1, -1, -1])
    for spec in config.cameras:
        assert annotated[spec.id] == _mot_rows(directory, spec.id)


def test_dropped_frames_file_only_where_frames_may_drop(tiny_scene: Path, knobby_scene: Path):
    assert not (tiny_scene / "ground_truth" / "dropped_frames.csv").exists()
    assert _csv(knobby_scene, "dropped_frames.csv")


@pytest.mark.parametrize("camera_index", [0, 1, 2])
def test_homography_maps_foot_points_onto_map_positions(tiny_scene: Path, camera_index: int):
    camera = _environment(tiny_scene)["cameras"][camera_index]
    pairs = camera["homography"]
    homography, _ = cv2.findHomography(np.array(pairs["image_points"], float), np.array(pairs["map_points"], float))
    truth = {
        (row["frame"], row["person_id"]): (float(row["map_x"]), float(row["map_y"]))
        for row in _csv(tiny_scene, "map_positions.csv")
    }
    rows = [row for row in _csv(tiny_scene, "visibility.csv") if row["camera_id"] == camera["id"]]
    assert rows, "the tiny scene should show someone to every camera"
    feet = np.array([[float(row["foot_u"]), float(row["foot_v"])] for row in rows])
    mapped = cv2.perspectiveTransform(feet[None], homography)[0]
    expected = np.array([truth[(row["frame"], row["person_id"])] for row in rows])
    assert np.abs(mapped - expected).max() < 0.02  # metres


def test_box_bottoms_land_near_the_map_positions(tiny_scene: Path):
    """Bottom-centres of unclipped boxes are where trackers put people: within a stride."""
    truth = {
        (row["frame"], row["person_id"]): (float(row["map_x"]), float(row["map_y"]))
        for row in _csv(tiny_scene, "map_positions.csv")
    }
    for camera in _environment(tiny_scene)["cameras"]:
        pairs = camera["homography"]
        homography, _ = cv2.findHomography(np.array(pairs["image_points"], float), np.array(pairs["map_points"], float))
        rows = [
            row
            for row in _csv(tiny_scene, "visibility.csv")
            if row["camera_id"] == camera["id"] and float(row["in_frame"]) == 1.0
        ]
        bottoms = np.array([[int(row["x"]) + int(row["w"]) / 2, int(row["y"]) + int(row["h"])] for row in rows])
        mapped = cv2.perspectiveTransform(bottoms.reshape(1, -1, 2), homography)[0]
        expected = np.array([truth[(row["frame"], row["person_id"])] for row in rows]).reshape(-1, 2)
        assert np.median(np.linalg.norm(mapped - expected, axis=1)) < 0.35


def test_person_ids_are_global_across_cameras(tiny_scene: Path, tiny_config: SceneConfig):
    """A person seen by two cameras at once has one id, and both views put them on the same map spot."""
    environment = _environment(tiny_scene)
    homographies = {}
    for camera in environment["cameras"]:
        pairs = camera["homography"]
        homographies[camera["id"]], _ = cv2.findHomography(
            np.array(pairs["image_points"], float), np.array(pairs["map_points"], float)
        )
    seen = defaultdict(dict)  # (frame, person) -> {camera: map point}
    for row in _csv(tiny_scene, "visibility.csv"):
        if row["annotated"] == "1":
            foot = np.array([[[float(row["foot_u"]), float(row["foot_v"])]]])
            point = cv2.perspectiveTransform(foot, homographies[row["camera_id"]])[0, 0]
            seen[(row["frame"], row["person_id"])][row["camera_id"]] = point
    shared = [views for views in seen.values() if len(views) >= 2]
    assert shared, "the tiny scene should show someone to two cameras at once"
    for views in shared:
        points = np.array(list(views.values()))
        assert np.abs(points - points[0]).max() < 0.02
