"""Small videos for the media tests, written and read with PyAV (FFmpeg).

``VTEST`` is OpenCV's sample (a DivX AVI of people walking) from Debian's ``opencv-doc``,
which ``make samples`` installs.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
VTEST_FRAMES = 795


def write_video(
    path: Path,
    codec: str,
    *,
    frames: int = 12,
    fps: int = 10,
    size: tuple[int, int] = (96, 64),
    container: str | None = None,
    options: dict[str, str] | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
) -> Path:
    """A video whose every frame differs (a bar that moves), written with PyAV."""
    width, height = size
    path.parent.mkdir(parents=True, exist_ok=True)
    pix_fmt = {"mjpeg": "yuvj420p", "mpeg4": "yuv420p", "libx264": "yuv420p"}[codec]
    with av.open(str(path), "w", format=container, options=options or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            stream.codec_context.time_base = time_base
        for i in range(frames):
            image = np.full((height, width, 3), 30, np.uint8)
            image[:, (7 * i) % width : (7 * i) % width + 6] = 220
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = pts[i] if pts is not None else i
            if time_base is not None:
                frame.time_base = time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def frame_times(path: Path) -> list[Fraction]:
    """Every decoded frame's presentation time, in seconds, in order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [frame.pts * frame.time_base for frame in container.decode(stream)]


def video_codec(path: Path) -> tuple[str, str, int, int]:
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        return ctx.name, ctx.pix_fmt, ctx.width, ctx.height


def packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]
