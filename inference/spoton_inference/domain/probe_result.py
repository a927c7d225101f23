"""What one look at a live source found: opened or why not, its format and frame rate.

The pipeline's probe (``pipeline/source_probe.py``) fills it in; the services judge it
(camera health, connection tests) and the gRPC edge converts it, without the pipeline.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    reason: str = ""  # why not, masked; empty when ok
    error_kind: str = ""  # av_source's failure kinds
    codec: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0  # what the stream declares
    first_frame_ms: float = 0.0  # from starting to open to the first decoded frame
    measured_fps: float = 0.0  # frames that arrived per second over the sample window; 0: not sampled
    frame: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)  # first, BGR
