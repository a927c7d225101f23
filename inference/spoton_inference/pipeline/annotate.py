"""Draw a task's tracks onto its source video: boxes, person ids and short trails.

The output is what browsers play: H.264 (libx264, yuv420p) in MP4 with the ``moov`` atom in
front (``faststart``), as ``scenes/video.py`` writes. Frames are read with OpenCV, as the
pipeline read them, so frame *i* of the source gets the tracks of MOT frame *i + 1*. Odd
frame sizes lose their last row or column (yuv420p needs even sizes).

Runs in a worker thread; ``stop`` ends it at the next frame, leaving a partial file for the
caller to remove.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

# Seconds of movement a trail shows.
TRAIL_SECONDS = 2.0
CRF = 23


def read_mot(path: Path) -> dict[int, list[tuple[int, float, float, float, float]]]:
    """MOTChallenge rows by frame: ``{frame: [(id, x, y, w, h), ...]}``."""
    rows: dict[int, list[tuple[int, float, float, float, float]]] = collections.defaultdict(list)
    with path.open() as f:
        for line in f:
            parts = line.split(",")
            if len(parts) >= 6:
                frame, ident, x, y, w, h = (float(v) for v in parts[:6])
                rows[int(frame)].append((int(ident), x, y, w, h))
    return rows


def render_annotated(
    source: Path,
    tracks: Path,
    out: Path,
    fps: float,
    on_frame: Callable[[int], None],
    stop: threading.Event,
) -> int:
    """Write ``out``; returns the frames written. ``on_frame(n)`` after each frame."""
    by_frame = read_mot(tracks)
    trail_len = max(2, round(TRAIL_SECONDS * fps))
    trails: dict[int, collections.deque[tuple[int, int]]] = {}
    last_seen: dict[int, int] = {}
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise OSError(f"cannot read {source}")
    container = None
    written = 0
    try:
        while not stop.is_set():
            ok, frame = capture.read()
            if not ok:
                break
            frame = frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]
            if container is None:
                container, stream = _open_h264(out, fps, frame.shape[1], frame.shape[0])
            _draw(frame, by_frame.get(written + 1, ()), written, trails, last_seen, trail_len)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
            written += 1
            on_frame(written)
        if container is not None and not stop.is_set():
            for packet in stream.encode():  # frames the encoder still holds
                container.mux(packet)
    finally:
        capture.release()
        if container is not None:
            container.close()
    return written


def _open_h264(out: Path, fps: float, width: int, height: int) -> tuple[av.container.OutputContainer, av.VideoStream]:
    container = av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"})
    stream = container.add_stream(
        "libx264", rate=Fraction(fps).limit_denominator(1001), options={"crf": str(CRF), "preset": "veryfast"}
    )
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    return container, stream


def _draw(
    frame: np.ndarray,
    rows: tuple | list[tuple[int, float, float, float, float]],
    index: int,
    trails: dict[int, collections.deque[tuple[int, int]]],
    last_seen: dict[int, int],
    trail_len: int,
) -> None:
    for ident, x, y, w, h in rows:
        trails.setdefault(ident, collections.deque(maxlen=trail_len)).append((round(x + w / 2), round(y + h)))
        last_seen[ident] = index
    for ident in [i for i, seen in last_seen.items() if index - seen >= trail_len]:
        del trails[ident], last_seen[ident]
    for ident, trail in trails.items():
        if len(trail) > 1:
            points = np.array(trail, np.int32).reshape(-1, 1, 2)
            cv2.polylines(frame, [points], False, _colour(ident), 2, cv2.LINE_AA)
    scale = max(frame.shape[0] / 720, 0.4)
    for ident, x, y, w, h in rows:
        colour = _colour(ident)
        top_left, bottom_right = (round(x), round(y)), (round(x + w), round(y + h))
        cv2.rectangle(frame, top_left, bottom_right, colour, max(1, round(2 * scale)), cv2.LINE_AA)
        label = f"ID {ident}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, 1)
        ty = max(top_left[1], th + base + 2)
        cv2.rectangle(frame, (top_left[0], ty - th - base - 2), (top_left[0] + tw + 4, ty), colour, -1)
        cv2.putText(
            frame,
            label,
            (top_left[0] + 2, ty - base - 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6 * scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )


def _colour(ident: int) -> tuple[int, int, int]:
    """A bright colour per id, far apart for neighbouring ids (golden-angle hues)."""
    hue = int((ident * 137.508) % 180)
    bgr = cv2.cvtColor(np.uint8([[[hue, 200, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])
