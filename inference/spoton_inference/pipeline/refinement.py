"""A recorded task's refinement windows: online frames in, refined tracking updates out.

The runner hands each online frame to :class:`RefinementWindows` (what every camera's tracker
matched, and every detection), and when a window is complete (a sub-video batch ends, or
``window_frames`` frames have gathered) asks for it back refined
(:class:`~spoton_inference.tracking.refine.refiner.Refiner`): one
:class:`~spoton_inference.domain.events.TrackingUpdate` per frame of the window, with every
camera that had a frame, in frame order. The runner then stores and exports those instead
of the online ones, and announces them in :class:`~spoton_inference.domain.events.TracksRefined`
events of at most :data:`FRAMES_PER_REFINED_EVENT` frames each.

Example:
    >>> import numpy as np
    >>> from spoton_inference.tracking.multicam import GlobalTrack
    >>> from spoton_inference.tracking.refine.refiner import Refiner
    >>> windows = RefinementWindows(Refiner(10.0, {"c1": None}), ["c1"], "env", window_frames=100)
    >>> for f in range(3):
    ...     box = np.array([10 + f, 10, 50 + f, 120], np.float32)
    ...     windows.add(f, {"c1": ("sub_video_01.mp4", f)}, {"c1": [GlobalTrack(1, 1, box, 0.9, None)]},
    ...                 {"c1": (box[None], np.array([0.9], np.float32))})
    >>> window = windows.refine(None)
    >>> [(u.global_frame_index, [(t.track_id, t.global_id) for t in u.cameras[0].tracks]) for u in window.updates]
    [(0, [(1, 1)]), (1, [(1, 1)]), (2, [(1, 1)])]
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

import numpy as np

from spoton_inference.domain.events import CameraTracksOut, TrackingUpdate, TrackOut
from spoton_inference.tracking.calibration import ReidFit
from spoton_inference.tracking.identities import IdentityState
from spoton_inference.tracking.multicam import GlobalTrack
from spoton_inference.tracking.refine.record import WindowRecord
from spoton_inference.tracking.refine.refiner import Refiner

# Refined frames per tracks_refined event: a bound on each event's size in the task's stream.
FRAMES_PER_REFINED_EVENT = 100


@dataclasses.dataclass(frozen=True, slots=True)
class RefinedWindow:
    first_frame: int
    last_frame: int
    updates: list[TrackingUpdate]
    identities: list[IdentityState]
    seconds: float  # wall time the refinement took


class RefinementWindows:
    def __init__(self, refiner: Refiner, camera_ids: Sequence[str], environment_id: str, window_frames: int) -> None:
        self._refiner = refiner
        self._camera_ids = list(camera_ids)
        self._environment_id = environment_id
        self._window_frames = window_frames
        self._record = WindowRecord(self._camera_ids)
        # Per global frame, the cameras that had a frame: their source file and index in it.
        self._sources: dict[int, dict[str, tuple[str, int]]] = {}

    @property
    def pending_frames(self) -> int:
        return len(self._sources)

    @property
    def num_identities(self) -> int:
        """Refined global ids given out so far."""
        return self._refiner.num_identities

    @property
    def full(self) -> bool:
        return len(self._sources) >= self._window_frames

    def add(
        self,
        frame: int,
        sources: Mapping[str, tuple[str, int]],
        tracked: Mapping[str, list[GlobalTrack]],
        detections: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ) -> None:
        """One online global frame: per camera its source, its matched tracks and all its detections."""
        self._sources[frame] = dict(sources)
        for cam, (boxes, scores) in detections.items():
            self._record.add_detections(cam, frame, boxes, scores)
        for cam, tracks in tracked.items():
            self._record.add(cam, frame, [(t.track_id, t.global_id, t.box, t.score, t.map_xy, t.crop) for t in tracks])

    def refine(self, fit: ReidFit | None) -> RefinedWindow:
        """The pending frames, refined; CPU-bound (run it in a thread). Starts the next window."""
        started = time.perf_counter()
        record, sources = self._record, self._sources
        self._record, self._sources = WindowRecord(self._camera_ids), {}
        tracks = self._refiner.refine(record, fit)
        by_frame: dict[int, dict[str, list[TrackOut]]] = {}
        for t in tracks:
            for frame, box, score, xy in zip(
                t.frames.tolist(), t.boxes.tolist(), t.scores.tolist(), t.map_xy.tolist(), strict=True
            ):
                coords = None if np.isnan(xy[0]) else (round(xy[0], 4), round(xy[1], 4))
                out = TrackOut(tuple(round(v, 2) for v in box), round(score, 4), t.track_id, t.global_id, coords)  # type: ignore[arg-type]
                by_frame.setdefault(frame, {}).setdefault(t.camera_id, []).append(out)
        now = time.time()
        updates = []
        for frame in sorted(sources):
            cameras = [
                CameraTracksOut(cam, source, index, sorted(by_frame.get(frame, {}).get(cam, []), key=_by_track))
                for cam, (source, index) in sources[frame].items()
            ]
            updates.append(TrackingUpdate(frame, self._environment_id, now, cameras))
        first, last = (min(sources), max(sources)) if sources else (0, -1)
        return RefinedWindow(first, last, updates, self._refiner.identities, time.perf_counter() - started)


def _by_track(t: TrackOut) -> int:
    return t.track_id
