"""Degraded footage: frozen (dropped) frames and dim light, in a generated scene."""

from __future__ import annotations

import csv
import importlib
from collections import defaultdict
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from spoton_inference.scenes import SceneConfig

# The package exports the function ``generate`` under the module's name.
generate_module = importlib.import_module("spoton_inference.scenes.generate")


def _frames(scene: Path, camera_id: str) -> list[np.ndarray]:
    """Every decoded frame of a camera, batches in order (index 0 is global frame 1)."""
    frames = []
    for video in sorted((scene / "cameras" / camera_id).glob("*.mp4")):
        capture = cv2.VideoCapture(str(video))
        while (result := capture.read())[0]:
            frames.append(result[1].astype(float))
    return frames


class _RecordingSink:
    """Stands in for :class:`~spoton_inference.scenes.video.VideoSink`: keeps the frames, writes nothing."""

    frames: ClassVar[dict[str, list[np.ndarray]]] = defaultdict(list)

    def __init__(self, path: Path, fps: int, width: int, height: int, crf: int) -> None:
        self.camera_id = path.parent.name

    def __enter__(self) -> _RecordingSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def write(self, frame: np.ndarray) -> None:
        self.frames[self.camera_id].append(frame.copy())


def _dropped(scene: Path) -> dict[str, set[int]]:
    dropped = defaultdict(set)
    with (scene / "ground_truth" / "dropped_frames.csv").open() as file:
        for row in csv.DictReader(file):
            dropped[row["camera_id"]].add(int(row["frame"]))
    return dropped


def _rows_by_frame(lines: list[str], frame_column: int, camera_id: str | None = None) -> dict[int, list[str]]:
    """Lines keyed by frame, with the frame (and camera) column cut out."""
    rows = defaultdict(list)
    for line in lines:
        values = line.split(",")
        if camera_id is None or values[1] == camera_id:
            rows[int(values[frame_column])].append(",".join(values[frame_column + 1 :]))
    return rows


def test_dropped_frames_repeat_the_previous_image(
    knobby_config: SceneConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(generate_module, "VideoSink", _RecordingSink)
    monkeypatch.setattr(_RecordingSink, "frames", defaultdict(list))
    scene = generate_module.generate(knobby_config, tmp_path)
    dropped = _dropped(scene)
    assert sum(len(frames) for frames in dropped.values()) >= 3
    for spec in knobby_config.cameras:
        frames = _RecordingSink.frames[spec.id]
        assert len(frames) == knobby_config.total_frames and 1 not in dropped[spec.id]
        for frame in range(2, knobby_config.total_frames + 1):
            # Frames are 1-based, the list 0-based: frames[frame - 1] is frame ``frame``.
            repeated = np.array_equal(frames[frame - 1], frames[frame - 2])
            assert repeated == (frame in dropped[spec.id]), (spec.id, frame)


def test_dropped_frames_repeat_the_previous_ground_truth(knobby_scene: Path, knobby_config: SceneConfig):
    visibility = (knobby_scene / "ground_truth" / "visibility.csv").read_text().splitlines()[1:]
    for camera_id, frames in _dropped(knobby_scene).items():
        mot = _rows_by_frame((knobby_scene / "ground_truth" / f"{camera_id}.txt").read_text().splitlines(), 0)
        seen = _rows_by_frame(visibility, 0, camera_id)
        for frame in frames:
            assert mot[frame] == mot[frame - 1]
            assert seen[frame] == seen[frame - 1]
    # The map keeps the true positions: people move on while a camera is frozen.
    positions = _rows_by_frame((knobby_scene / "ground_truth" / "map_positions.csv").read_text().splitlines()[1:], 0)
    assert all(positions[frame] != positions[frame - 1] for frame in range(2, knobby_config.total_frames + 1))


def test_dim_light_darkens_the_footage(tiny_scene: Path, knobby_scene: Path, knobby_config: SceneConfig):
    """Same hall and cameras (same seed), one at half the light."""
    for spec in knobby_config.cameras:
        normal, dim = _frames(tiny_scene, spec.id)[0], _frames(knobby_scene, spec.id)[0]
        assert 0.4 < dim.mean() / normal.mean() < 0.65
