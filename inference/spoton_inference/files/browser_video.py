"""Browser-playable copies of videos: H.264 (yuv420p) in MP4 with the ``moov`` atom first.

Browsers play H.264 in MP4 everywhere, and start at once (and seek) when the index (``moov``)
comes before the media data (``faststart``). An upload or a sub-video may be anything FFmpeg
reads (a DivX AVI, MJPEG, H.264 in Matroska, HEVC...), so:

- :func:`playability` says whether a file plays as it is, needs only a new container
  (:attr:`Verdict.REMUX`: H.264 already, packets copied, nothing re-encoded) or a new encoding
  (:attr:`Verdict.TRANSCODE`: libx264);
- :func:`make_playable` writes the copy.

Every frame keeps its presentation timestamp (the output stream keeps the input's time base),
so the copy has the same frames at the same times, and frame *i* of the copy is frame *i* of
the original: tracks computed on either stay in sync with the video a browser shows. Audio is
left out (nothing here plays it). CPU-bound: call it from a worker thread.

Example:
    >>> import tempfile
    >>> src = Path(tempfile.mkdtemp()) / "in.avi"
    >>> with av.open(str(src), "w") as out:
    ...     stream = out.add_stream("mjpeg", rate=5)
    ...     stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
    ...     for i in range(10):
    ...         frame = av.VideoFrame(64, 48, "yuv420p"); frame.pts = i
    ...         out.mux(stream.encode(frame))
    ...     out.mux(stream.encode())
    >>> playability(src)
    <Verdict.TRANSCODE: 'transcode'>
    >>> made = make_playable(src, src.with_suffix(".mp4"))
    >>> made.frames, playability(src.with_suffix(".mp4"))
    (10, <Verdict.PLAYABLE: 'playable'>)
"""

from __future__ import annotations

import dataclasses
import enum
import struct
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# What browsers decode in H.264: 8-bit 4:2:0 (High 10, 4:2:2 and 4:4:4 profiles do not play in Chrome).
BROWSER_PIX_FMTS = frozenset({"yuv420p", "yuvj420p"})
# Audio codecs browsers play in MP4; another one makes the file need a new container.
BROWSER_AUDIO_CODECS = frozenset({"aac", "mp3", "opus", "flac"})
# ISO MP4 brands; QuickTime ("qt  ") files share the demuxer but not every browser plays them.
_QUICKTIME_BRAND = "qt"
# Quality for re-encoded video: visually lossless, as the tracker may read the copy.
CRF = 18
PRESET = "veryfast"
# Threads per conversion (encoder and decoder each), fixed so that a few conversions at once
# never take the whole machine from the tracking.
THREADS = 2
OUTPUT_OPTIONS = {"movflags": "+faststart"}
# FFmpeg's AVColorRange: TV (16-235, what the copy is written in) and PC/JPEG (0-255).
_LIMITED_RANGE, _FULL_RANGE = 1, 2


class Verdict(enum.Enum):
    """What a video needs to play in a browser."""

    PLAYABLE = "playable"  # H.264 in MP4, moov first: serve it as it is
    REMUX = "remux"  # H.264, in another container or without faststart: copy the packets
    TRANSCODE = "transcode"  # another codec or pixel format: re-encode with libx264


@dataclasses.dataclass(frozen=True, slots=True)
class Conversion:
    """What :func:`make_playable` did: how, how many frames, and how long it took."""

    verdict: Verdict
    frames: int
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Stopped(Exception):
    """The conversion was asked to stop; the output is incomplete and must be discarded."""


def playability(path: Path) -> Verdict:
    """What ``path`` needs to play in a browser; raises av.FFmpegError / ValueError when it is
    no video FFmpeg reads."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path.name} has no video stream")
        video = container.streams.video[0].codec_context
        if video.name != "h264" or video.pix_fmt not in BROWSER_PIX_FMTS:
            return Verdict.TRANSCODE
        iso_mp4 = container.format.name.startswith("mov,mp4") and (
            container.metadata.get("major_brand", "").strip() != _QUICKTIME_BRAND
        )
        others_play = all(
            s.type == "audio" and s.codec_context.name in BROWSER_AUDIO_CODECS
            for s in container.streams
            if s is not container.streams.video[0]
        )
    return Verdict.PLAYABLE if iso_mp4 and others_play and moov_before_mdat(path) else Verdict.REMUX


def moov_before_mdat(path: Path) -> bool:
    """Whether the MP4's index (``moov``) comes before its media data (``mdat``): faststart.

    Walks the top-level boxes only (8-byte headers, 64-bit sizes included), never the data.
    """
    with path.open("rb") as f:
        end = f.seek(0, 2)
        position = 0
        while position + 8 <= end:
            f.seek(position)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:  # a 64-bit size follows the type
                (size,) = struct.unpack(">Q", f.read(8))
            elif size == 0:  # the box runs to the end of the file
                size = end - position
            if kind == b"moov":
                return True
            if kind == b"mdat" or size < 8:
                return False
            position += size
    return False


def make_playable(
    src: Path,
    dst: Path,
    *,
    stop: threading.Event | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> Conversion:
    """Write a browser-playable copy of ``src`` to ``dst`` (MP4, faststart): the H.264 packets
    copied when ``src`` is H.264 in a form browsers decode, else every frame re-encoded.

    ``on_frame(n)`` is told the frames written so far; ``stop`` set ends it with
    :class:`Stopped` at the next frame (``dst`` is then partial: remove it). A stream whose
    packets cannot be copied into MP4 (H.264 in AVI without presentation times, for one) is
    re-encoded instead.
    """
    started = time.perf_counter()
    verdict = playability(src)
    if verdict is not Verdict.TRANSCODE:
        try:
            frames = _remux(src, dst, stop, on_frame)
            return Conversion(Verdict.REMUX, frames, time.perf_counter() - started)
        except av.FFmpegError:
            dst.unlink(missing_ok=True)
    frames = _transcode(src, dst, stop, on_frame)
    return Conversion(Verdict.TRANSCODE, frames, time.perf_counter() - started)


def _remux(src: Path, dst: Path, stop: threading.Event | None, on_frame: Callable[[int], None] | None) -> int:
    frames = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4", options=OUTPUT_OPTIONS) as out:
        source = inp.streams.video[0]
        target = out.add_stream_from_template(source)
        for packet in inp.demux(source):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            _check(stop)
            packet.stream = target
            out.mux(packet)
            frames += 1
            if on_frame is not None:
                on_frame(frames)
    return frames


def _transcode(src: Path, dst: Path, stop: threading.Event | None, on_frame: Callable[[int], None] | None) -> int:
    frames = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4", options=OUTPUT_OPTIONS) as out:
        source = inp.streams.video[0]
        source.thread_type, source.thread_count = "AUTO", THREADS
        time_base = source.time_base or Fraction(1, 90_000)
        rate = source.average_rate or source.guessed_rate or Fraction(1, time_base)
        target = out.add_stream(
            "libx264",
            rate=rate,
            options={"crf": str(CRF), "preset": PRESET, "threads": str(THREADS)},
        )
        # yuv420p needs even sizes: an odd last row or column is dropped, so pixels keep their coordinates.
        width, height = source.codec_context.width & ~1, source.codec_context.height & ~1
        target.width, target.height, target.pix_fmt = width, height, "yuv420p"
        target.codec_context.color_range = _LIMITED_RANGE
        # The input's time base, so every presentation time is carried over exactly.
        target.codec_context.time_base = time_base
        target.time_base = time_base
        for frame in _timed_frames(inp, source, time_base):
            _check(stop)
            out.mux(target.encode(_even(frame, width, height)))
            frames += 1
            if on_frame is not None:
                on_frame(frames)
        out.mux(target.encode())
    return frames


def _timed_frames(
    inp: av.container.InputContainer, source: av.VideoStream, time_base: Fraction
) -> Iterator[av.VideoFrame]:
    """The decoded frames in presentation order, each with its own time in ``time_base``.

    A frame without one (or one not after the previous: a damaged file) gets the next tick,
    since the encoder needs increasing times; well-formed files keep theirs exactly.
    """
    last: int | None = None
    for frame in inp.decode(source):
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None or (last is not None and pts <= last):
            pts = 0 if last is None else last + 1
        frame.pts, frame.time_base, last = pts, time_base, pts
        yield frame


def _even(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """``frame`` in limited-range yuv420p at ``width`` x ``height`` (its own size, or one less:
    cropped, not scaled). Full-range input (MJPEG's yuvj420p) is converted, not relabelled."""
    if (frame.width, frame.height) != (width, height):
        rgb: np.ndarray = frame.to_ndarray(format="rgb24")[:height, :width]
        cropped = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        cropped.pts, cropped.time_base = frame.pts, frame.time_base
        frame = cropped
    full = frame.color_range == _FULL_RANGE or frame.format.name.startswith("yuvj")
    out = frame.reformat(
        format="yuv420p", src_color_range=_FULL_RANGE if full else _LIMITED_RANGE, dst_color_range=_LIMITED_RANGE
    )
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Stopped("the conversion was stopped")
