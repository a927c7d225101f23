"""Write frames to an MP4 file that browsers play and OpenCV reads back exactly.

With PyAV (``av``) installed, video is H.264 (libx264, yuv420p) with the ``moov``
atom at the front (``faststart``), so a browser can start playing before the
download ends. Output is byte-for-byte reproducible: x264 runs with a fixed
thread count (its output depends on it) and without macroblock-tree rate control
(not reproducible for some widths), so the same frames give the same bytes on
any machine with the same PyAV build.

Without PyAV, OpenCV's ``mp4v`` (MPEG-4 Part 2) is the fallback: OpenCV's PyPI
wheels ship no H.264 encoder, and browsers do not play ``mp4v``.

Example:
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "clip.mp4"
    >>> with VideoSink(path, fps=10, width=64, height=48) as sink:
    ...     for value in range(5):
    ...         sink.write(np.full((48, 64, 3), value * 40, np.uint8))
    >>> path.stat().st_size > 0
    True
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

try:
    import av
except ImportError:  # pragma: no cover - depends on the environment
    av = None

#: x264 threads; fixed (not "auto") so the bytes do not depend on the CPU count.
ENCODER_THREADS = 2
#: No macroblock-tree rate control: with it, x264's SIMD code gave different bytes
#: from run to run for some frame widths (320 px, for one; 640 px was stable).
X264_PARAMS = "mbtree=0"


@cache
def h264_available() -> bool:
    """Whether browser-playable H.264 can be written here (PyAV with libx264)."""
    if av is None:
        return False
    try:
        av.codec.Codec("libx264", "w")
    except ValueError:  # pragma: no cover - a PyAV build without libx264
        return False
    return True


class VideoSink:
    """Context manager writing BGR uint8 frames of a fixed size to an MP4 file.

    Args:
        path: Output file (``.mp4``).
        fps: Frame rate (integer, so frame timestamps are exact).
        width: Frame width (even).
        height: Frame height (even).
        crf: H.264 quality, 0 (lossless) to 51; ignored by the ``mp4v`` fallback.
    """

    def __init__(self, path: Path, fps: int, width: int, height: int, crf: int = 23) -> None:
        self.path, self.fps, self.size, self.crf = Path(path), fps, (width, height), crf
        self._container = None
        self._stream = None
        self._writer = None

    @property
    def codec(self) -> str:
        """``"h264"`` or ``"mp4v"``, whichever this sink writes."""
        return "h264" if h264_available() else "mp4v"

    def __enter__(self) -> VideoSink:
        width, height = self.size
        if self.codec == "h264":
            self._container = av.open(str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
            self._stream = self._container.add_stream(
                "libx264",
                rate=Fraction(self.fps, 1),
                options={
                    "crf": str(self.crf),
                    "preset": "veryfast",
                    "threads": str(ENCODER_THREADS),
                    "x264-params": X264_PARAMS,
                },
            )
            self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
        else:
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self.size)
            if not self._writer.isOpened():
                raise OSError(f"cannot open {self.path} for writing")
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one BGR uint8 frame of the sink's size."""
        if frame.shape[:2] != self.size[::-1]:
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, expected {self.size[0]}x{self.size[1]}")
        if self._writer is not None:
            self._writer.write(frame)
            return
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
            self._container.mux(packet)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._writer is not None:
            self._writer.release()
            return
        for packet in self._stream.encode():  # flush delayed frames
            self._container.mux(packet)
        self._container.close()
