"""One look at a live source: can it be opened, what does it send, how fast.

Used by the connection test (open and decode one frame), the health checks (decode for a
short window to measure the frame rate) and snapshots (the first frame). Blocking: run it in
a worker thread. Never raises for a source that fails: the result says why, masked.
"""

from __future__ import annotations

import contextlib
import time

from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.frame_rate import declared_fps
from spoton_inference.domain.probe_result import ProbeResult
from spoton_inference.pipeline.av_source import ENDED, SourceError, describe, open_source


def probe_source(
    source: CameraSource, timeout_s: float, sample_s: float = 0.0, *, keep_frame: bool = False
) -> ProbeResult:
    """Open ``source`` within ``timeout_s``, decode its first frame (kept as BGR with
    ``keep_frame``), then keep decoding for ``sample_s`` seconds to measure the rate frames
    arrive at."""
    started = time.monotonic()
    try:
        container, stream = open_source(source, timeout_s)
        with contextlib.closing(container):
            ctx = stream.codec_context
            declared = declared_fps(stream)
            frames = container.decode(stream)
            first = next(frames, None)
            if first is None:
                raise SourceError(ENDED, f"{source.masked_url} opened, but sent no frame")
            first_at = time.monotonic()
            count = 0
            if sample_s > 0:
                for _ in frames:
                    count += 1
                    if time.monotonic() - first_at >= sample_s:
                        break
            window = time.monotonic() - first_at
            return ProbeResult(
                ok=True,
                codec=ctx.name,
                width=first.width,
                height=first.height,
                fps=declared,
                first_frame_ms=round((first_at - started) * 1000, 1),
                measured_fps=round(count / window, 2) if sample_s > 0 and window > 0 else 0.0,
                frame=first.to_ndarray(format="bgr24") if keep_frame else None,
            )
    except Exception as exc:
        error = describe(exc, source.masked_url, timeout_s, time.monotonic() - started)
        return ProbeResult(ok=False, reason=error.reason, error_kind=error.kind)
