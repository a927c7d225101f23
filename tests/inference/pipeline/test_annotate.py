"""The annotated video: browser-playable H.264 with every source frame and the tracks drawn."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from spoton_inference.pipeline.annotate import read_mot, render_annotated
from spoton_inference.scenes.video import VideoSink

GREY = 90


def _source(path: Path, frames: int, width: int = 160, height: int = 120) -> Path:
    if width % 2 or height % 2:  # VideoSink writes even sizes only; odd ones come from OpenCV
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (width, height))
        for _ in range(frames):
            writer.write(np.full((height, width, 3), GREY, np.uint8))
        writer.release()
        return path
    with VideoSink(path, 10, width, height) as sink:
        for _ in range(frames):
            sink.write(np.full((height, width, 3), GREY, np.uint8))
    return path


def _tracks(path: Path, frames: int) -> Path:
    path.write_text("".join(f"{f},7,{20 + 2 * f},30,30,60,0.9,-1,-1,-1\n" for f in range(1, frames + 1)))
    return path


def test_every_frame_is_written_as_h264_yuv420p_with_faststart_and_boxes(tmp_path: Path) -> None:
    source, tracks, out = _source(tmp_path / "s.mp4", 20), _tracks(tmp_path / "t.txt", 20), tmp_path / "o.mp4"
    done: list[int] = []
    assert render_annotated(source, tracks, out, 10, done.append, threading.Event()) == 20
    assert done == list(range(1, 21))
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert stream.average_rate == 10
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert len(frames) == 20
    # Frame 10 (MOT frame 10): the box's left edge at x = 20 + 2 * 10 = 40 is drawn, the middle is not.
    frame = frames[9].astype(int)
    assert np.abs(frame[60:80, 39:42] - GREY).mean() > 30
    assert np.abs(frame[60:80, 50:60] - GREY).mean() < 8


def test_odd_sizes_lose_a_row_and_a_column(tmp_path: Path) -> None:
    source = _source(tmp_path / "s.mp4", 5, width=161, height=121)
    out = tmp_path / "o.mp4"
    render_annotated(source, _tracks(tmp_path / "t.txt", 5), out, 10, lambda n: None, threading.Event())
    with av.open(str(out)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (160, 120)


def test_stop_ends_it_at_the_next_frame(tmp_path: Path) -> None:
    source, tracks, out = _source(tmp_path / "s.mp4", 30), _tracks(tmp_path / "t.txt", 30), tmp_path / "o.mp4"
    stop = threading.Event()

    def on_frame(n: int) -> None:
        if n == 5:
            stop.set()

    assert render_annotated(source, tracks, out, 10, on_frame, stop) == 5


def test_mot_rows_are_read_by_frame(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("1,3,10.5,20,30,40,0.9,-1,-1,-1\n1,4,0,0,5,5,0.8,-1,-1,-1\n3,3,11,20,30,40,0.9,-1,-1,-1\n")
    assert read_mot(path) == {1: [(3, 10.5, 20, 30, 40), (4, 0, 0, 5, 5)], 3: [(3, 11, 20, 30, 40)]}
    assert pytest.approx(read_mot(path)[3][0][1]) == 11
