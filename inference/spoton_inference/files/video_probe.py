"""Is an uploaded file a video we can process? Decided by decoding it, never by its name.

PyAV (FFmpeg) opens the container, finds a video stream and decodes frames until one comes
out. Anything short of that is :class:`UnsupportedMedia` with FFmpeg's reason: not a
container FFmpeg knows, a still image, no video stream, or no frame that decodes.

Example:
    >>> import tempfile
    >>> path = tempfile.mktemp(suffix=".mp4")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"not a video " * 400)
    >>> try:
    ...     probe_video(path)
    ... except UnsupportedMedia as exc:
    ...     print(str(exc).split(":")[0])
    not a video file FFmpeg can read
"""

from __future__ import annotations

from pathlib import Path

import av

from spoton_inference.domain.errors import UnsupportedMedia
from spoton_inference.domain.frame_rate import declared_fps
from spoton_inference.domain.job_types import VideoInfo

# Packets demuxed before giving up on a first frame: generous for B-frame and intra-refresh
# streams, small enough that a long undecodable file is refused quickly.
MAX_PROBE_PACKETS = 600
# Demuxers FFmpeg uses for single images (and animated ones): not videos to track people in.
_IMAGE_FORMATS = {"image2", "gif", "apng", "webp"}


def probe_video(path: Path | str) -> VideoInfo:
    """The video's container, codec, size, frame rate, duration and (estimated) frame count."""
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UnsupportedMedia(f"not a video file FFmpeg can read: {_reason(exc)}") from None
    with container:
        fmt = container.format.name
        if fmt.endswith("_pipe") or fmt in _IMAGE_FORMATS:
            raise UnsupportedMedia(f"this is an image ({fmt}), not a video; upload a video file (MP4, MOV, MKV, ...)")
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise UnsupportedMedia(f"the file has no video stream (streams: {', '.join(kinds)})")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        frame = _first_frame(container, stream, codec)
        fps = declared_fps(stream)
        duration = _duration_s(container, stream)
        frames = int(stream.frames) or round(duration * fps)
        return VideoInfo(fmt, codec, frame.width, frame.height, round(fps, 6), round(duration, 3), frames)


def _first_frame(container: av.container.InputContainer, stream: av.VideoStream, codec: str) -> av.VideoFrame:
    try:
        for n, packet in enumerate(container.demux(stream)):
            for frame in packet.decode():
                return frame
            if n >= MAX_PROBE_PACKETS:
                break
        for frame in stream.codec_context.decode(None):  # frames the decoder still holds
            return frame
    except (av.FFmpegError, ValueError) as exc:
        raise UnsupportedMedia(f"its {codec} video does not decode: {_reason(exc)}") from None
    raise UnsupportedMedia(f"no frame of its {codec} video decodes; the file is damaged or truncated")


def _duration_s(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else 0.0


def _reason(exc: Exception) -> str:
    # FFmpeg errors carry the file name; the user knows which file they sent.
    return getattr(exc, "strerror", None) or str(exc)
