"""The upload probe decides by decoding, never by the file's name."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from spoton_inference.domain.errors import InvalidArgument, UnsupportedMedia
from spoton_inference.files.video_probe import probe_video
from spoton_inference.scenes.video import VideoSink


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.bin"  # the name says nothing; the bytes are an MP4
    with VideoSink(path, fps=12, width=96, height=64) as sink:
        for i in range(24):
            sink.write(np.full((64, 96, 3), i * 10, np.uint8))
    return path


def test_a_real_video_is_described(clip: Path) -> None:
    info = probe_video(clip)
    assert (info.codec, info.width, info.height, info.frames) == ("h264", 96, 64, 24)
    assert "mp4" in info.container and info.fps == pytest.approx(12) and info.duration_s == pytest.approx(2.0)


def test_other_containers_and_codecs_pass_too(tmp_path: Path) -> None:
    path = tmp_path / "clip.mkv"
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(25, 1))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe_video(path)
    assert (info.container, info.codec, info.width) == ("matroska,webm", "mpeg4", 64)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, clip: p.write_bytes(os.urandom(64 * 1024)), "not a video file FFmpeg can read"),
        (lambda p, clip: p.write_bytes(b""), "not a video file FFmpeg can read"),
        (lambda p, clip: cv2.imwrite(str(p.with_suffix(".png")), np.zeros((8, 8, 3), np.uint8)), "image"),
        # the index is whole, the frames are cut off
        (lambda p, clip: p.write_bytes(clip.read_bytes()[: clip.read_bytes().find(b"mdat") + 4]), "decode"),
    ],
    ids=["random-bytes", "empty", "png-named-mp4", "truncated"],
)
def test_what_is_no_video_is_refused_as_unsupported_media(tmp_path: Path, clip: Path, make, message: str) -> None:
    path = tmp_path / "upload.mp4"
    make(path, clip)
    if not path.exists():  # the image was written beside it: give it the video's name
        path.with_suffix(".png").rename(path)
    with pytest.raises(UnsupportedMedia, match=message) as err:
        probe_video(path)
    assert isinstance(err.value, InvalidArgument) and err.value.reason == "unsupported-media-type"


def test_audio_only_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(UnsupportedMedia, match="no video stream"):
        probe_video(path)
