"""Browser-playable copies (files/browser_video.py): H.264 yuv420p in MP4, moov first, the
same frames at the same times; H.264 copied packet for packet, anything else re-encoded.

``vtest.avi`` is OpenCV's sample (a DivX AVI) from Debian's ``opencv-doc`` (``make samples``).
"""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from support.videos import VTEST, VTEST_FRAMES, frame_times, packets, video_codec, write_video

from spoton_inference.files.browser_video import (
    Stopped,
    Verdict,
    make_playable,
    moov_before_mdat,
    playability,
)

needs_vtest = pytest.mark.skipif(not VTEST.exists(), reason="vtest.avi is missing: run `make samples`")


def assert_browser_playable(path: Path) -> None:
    with av.open(str(path)) as container:
        assert container.format.name.startswith("mov,mp4")
        assert [s.type for s in container.streams] == ["video"]
    assert video_codec(path)[:2] == ("h264", "yuv420p")
    assert moov_before_mdat(path)
    assert playability(path) is Verdict.PLAYABLE


@needs_vtest
def test_vtest_avi_is_transcoded_to_h264_mp4_with_the_same_frames_at_the_same_times(tmp_path):
    out = tmp_path / "vtest.mp4"
    assert playability(VTEST) is Verdict.TRANSCODE
    made = make_playable(VTEST, out)
    assert made.verdict is Verdict.TRANSCODE
    assert_browser_playable(out)
    assert video_codec(out)[2:] == (768, 576)
    original = frame_times(VTEST)
    assert made.frames == len(original) == VTEST_FRAMES
    assert frame_times(out) == original  # exactly: same count, same order, same times
    # The tracker reads with OpenCV: it counts the same frames in both.
    counts = []
    for path in (VTEST, out):
        cap = cv2.VideoCapture(str(path))
        n = 0
        while cap.read()[0]:
            n += 1
        cap.release()
        counts.append(n)
    assert counts == [VTEST_FRAMES, VTEST_FRAMES]


def test_mjpeg_is_transcoded_and_its_pictures_survive(tmp_path):
    src = write_video(tmp_path / "cam.avi", "mjpeg", frames=20, fps=12, container="avi")
    out = tmp_path / "cam.mp4"
    made = make_playable(src, out)
    assert (made.verdict, made.frames) == (Verdict.TRANSCODE, 20)
    assert_browser_playable(out)
    assert frame_times(out) == frame_times(src)
    # The moving bar is where it was, frame by frame.
    with av.open(str(src)) as a, av.open(str(out)) as b:
        pairs = zip(a.decode(video=0), b.decode(video=0), strict=True)
        for before, after in pairs:
            diff = np.abs(before.to_ndarray(format="gray").astype(int) - after.to_ndarray(format="gray").astype(int))
            assert diff.mean() < 3


def test_variable_frame_times_are_kept_exactly(tmp_path):
    # MPEG-4 part 2 in Matroska (1 ms ticks) with uneven gaps between frames.
    pts = [0, 100, 150, 400, 433, 466, 1000, 1100]
    src = write_video(
        tmp_path / "vfr.mkv", "mpeg4", frames=len(pts), container="matroska", pts=pts, time_base=Fraction(1, 1000)
    )
    out = tmp_path / "vfr.mp4"
    make_playable(src, out)
    assert frame_times(src) == [Fraction(p, 1000) for p in pts]
    assert frame_times(out) == frame_times(src)


def test_h264_in_matroska_is_remuxed_packet_for_packet(tmp_path):
    src = write_video(tmp_path / "in.mkv", "libx264", frames=30, container="matroska")
    out = tmp_path / "out.mp4"
    assert playability(src) is Verdict.REMUX
    made = make_playable(src, out)
    assert (made.verdict, made.frames) == (Verdict.REMUX, 30)
    assert_browser_playable(out)
    assert packets(out) == packets(src)  # not re-encoded: the same compressed bytes
    assert frame_times(out) == frame_times(src)


def test_h264_mp4_without_faststart_is_remuxed_with_the_index_first(tmp_path):
    src = write_video(tmp_path / "slow.mp4", "libx264", frames=15, container="mp4")
    assert not moov_before_mdat(src)
    assert playability(src) is Verdict.REMUX
    out = tmp_path / "fast.mp4"
    assert make_playable(src, out).verdict is Verdict.REMUX
    assert_browser_playable(out)
    assert packets(out) == packets(src)


def test_h264_mp4_with_faststart_plays_as_it_is(tmp_path):
    src = write_video(tmp_path / "ok.mp4", "libx264", container="mp4", options={"movflags": "+faststart"})
    assert playability(src) is Verdict.PLAYABLE


def test_an_odd_size_loses_its_last_row_and_column_not_its_scale(tmp_path):
    src = write_video(tmp_path / "odd.avi", "mjpeg", size=(97, 65), container="avi")
    out = tmp_path / "odd.mp4"
    make_playable(src, out)
    assert video_codec(out)[2:] == (96, 64)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        first_in = next(a.decode(video=0)).to_ndarray(format="gray")[:64, :96].astype(int)
        first_out = next(b.decode(video=0)).to_ndarray(format="gray").astype(int)
    assert np.abs(first_in - first_out).mean() < 3


def test_stop_ends_the_conversion_at_the_next_frame(tmp_path):
    src = write_video(tmp_path / "in.avi", "mjpeg", container="avi")
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        make_playable(src, tmp_path / "out.mp4", stop=stop)


def test_a_file_that_is_no_video_is_refused(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video " * 100)
    with pytest.raises((av.FFmpegError, ValueError)):
        playability(junk)
