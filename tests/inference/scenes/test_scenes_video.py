"""Video files: browser-friendly H.264 when PyAV can, frame-exact read-back either way."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from spoton_inference.scenes import video
from spoton_inference.scenes.video import VideoSink, h264_available

WIDTH, HEIGHT, FRAMES = 160, 96, 7


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [cv2.GaussianBlur(rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8), (0, 0), 3) for _ in range(FRAMES)]


def _write(path: Path) -> VideoSink:
    with VideoSink(path, fps=10, width=WIDTH, height=HEIGHT) as sink:
        for frame in _frames():
            sink.write(frame)
    return sink


def _read(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (result := capture.read())[0]:
        frames.append(result[1])
    return frames


def test_frames_read_back_exactly_once_each(tmp_path: Path):
    path = tmp_path / "clip.mp4"
    _write(path)
    frames = _read(path)
    assert len(frames) == FRAMES
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == FRAMES
    for written, read in zip(_frames(), frames, strict=True):
        assert np.abs(written.astype(int) - read.astype(int)).mean() < 4  # lossy, but the same picture


@pytest.mark.skipif(not h264_available(), reason="PyAV with libx264 is not installed")
def test_h264_with_moov_first(tmp_path: Path):
    path = tmp_path / "clip.mp4"
    assert _write(path).codec == "h264"
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: playable while downloading
    assert b"avc1" in data[: data.index(b"mdat")]


def test_mp4v_fallback_without_pyav(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(video, "h264_available", lambda: False)
    path = tmp_path / "clip.mp4"
    assert _write(path).codec == "mp4v"
    assert len(_read(path)) == FRAMES


def test_wrong_frame_size_is_refused(tmp_path: Path):
    with VideoSink(tmp_path / "clip.mp4", fps=10, width=WIDTH, height=HEIGHT) as sink:
        with pytest.raises(ValueError, match="expected 160x96"):
            sink.write(np.zeros((HEIGHT, WIDTH + 2, 3), np.uint8))
