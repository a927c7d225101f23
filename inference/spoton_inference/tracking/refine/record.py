"""What the online pass leaves for refinement: every camera's sightings over a window of frames.

A *sighting* is one track matched to one detection in one frame, as the online tracker
decided it: the frame, its online local and global ids, the box, the score, the map point,
and the crop embedding when one was computed that frame. Rows are kept as compact arrays
(embeddings in float16), so a window of a few thousand frames stays a few tens of MB.

Example:
    >>> import numpy as np
    >>> record = WindowRecord(["c1"])
    >>> record.add("c1", 0, [(3, 7, np.array([0, 0, 10, 20], np.float32), 0.9, (1.0, 2.0), None)])
    >>> s = record.sightings("c1")
    >>> s.frames.tolist(), s.track_ids.tolist(), s.global_ids.tolist(), s.map_xy.tolist()
    ([0], [3], [7], [[1.0, 2.0]])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

# One sighting: (local track id, online global id, box x1 y1 x2 y2, score, map point or None,
# crop embedding or None).
SightingInput = tuple[int, int, np.ndarray, float, tuple[float, float] | None, np.ndarray | None]


@dataclasses.dataclass(frozen=True, slots=True)
class Sightings:
    """One camera's sightings over a window, one row each, ordered by frame."""

    frames: np.ndarray  # int64
    track_ids: np.ndarray  # int64, online local ids
    global_ids: np.ndarray  # int64, online global ids
    boxes: np.ndarray  # float32 Nx4
    scores: np.ndarray  # float32
    map_xy: np.ndarray  # float64 Nx2, NaN where the camera has no homography
    embeddings: dict[int, np.ndarray]  # row -> unit crop embedding (float32)

    def __len__(self) -> int:
        return len(self.frames)

    @classmethod
    def empty(cls) -> Sightings:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 2)),
            {},
        )


@dataclasses.dataclass(slots=True)
class _CameraRows:
    numbers: list[tuple[int, int, int, float, float, float, float, float, float, float]]
    embeddings: dict[int, np.ndarray]
    detections: dict[int, tuple[np.ndarray, np.ndarray]]


class WindowRecord:
    """Sightings and raw detections of every camera, frame by frame, for one refinement window."""

    def __init__(self, camera_ids: Iterable[str]) -> None:
        self._cameras = {c: _CameraRows([], {}, {}) for c in camera_ids}
        self.first_frame: int | None = None
        self.last_frame: int | None = None

    @property
    def camera_ids(self) -> list[str]:
        return list(self._cameras)

    @property
    def num_frames(self) -> int:
        return 0 if self.first_frame is None else self.last_frame - self.first_frame + 1  # type: ignore[operator]

    def add(self, camera_id: str, frame: int, sightings: Sequence[SightingInput]) -> None:
        rows = self._cameras[camera_id]
        self._see_frame(frame)
        for track_id, global_id, box, score, xy, embedding in sightings:
            if embedding is not None:
                rows.embeddings[len(rows.numbers)] = np.asarray(embedding, np.float16)
            x, y = xy if xy is not None else (np.nan, np.nan)
            x1, y1, x2, y2 = (float(v) for v in box)
            rows.numbers.append((frame, track_id, global_id, x1, y1, x2, y2, float(score), x, y))

    def add_detections(self, camera_id: str, frame: int, boxes: np.ndarray, scores: np.ndarray) -> None:
        """Every detection of the frame, weak ones included: gaps may be filled with them."""
        self._see_frame(frame)
        if len(scores):
            self._cameras[camera_id].detections[frame] = (
                np.asarray(boxes, np.float32).reshape(-1, 4),
                np.asarray(scores, np.float32),
            )

    def free_detections(self, camera_id: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per frame, the detections no sighting of this camera holds (boxes, scores)."""
        rows = self._cameras[camera_id]
        held: dict[int, list[tuple[float, float, float, float]]] = {}
        for frame, _, _, x1, y1, x2, y2, *_ in rows.numbers:
            held.setdefault(frame, []).append((x1, y1, x2, y2))
        out = {}
        for frame, (boxes, scores) in rows.detections.items():
            taken = np.array(held.get(frame, []), np.float32).reshape(-1, 4)
            free = ~(np.abs(boxes[:, None, :] - taken[None, :, :]).max(axis=2) < 1e-3).any(axis=1)
            if free.any():
                out[frame] = (boxes[free], scores[free])
        return out

    def sightings(self, camera_id: str) -> Sightings:
        rows = self._cameras[camera_id]
        if not rows.numbers:
            return Sightings.empty()
        table = np.array(rows.numbers, dtype=np.float64)
        return Sightings(
            frames=table[:, 0].astype(np.int64),
            track_ids=table[:, 1].astype(np.int64),
            global_ids=table[:, 2].astype(np.int64),
            boxes=table[:, 3:7].astype(np.float32),
            scores=table[:, 7].astype(np.float32),
            map_xy=table[:, 8:10],
            embeddings={row: e.astype(np.float32) for row, e in rows.embeddings.items()},
        )

    def _see_frame(self, frame: int) -> None:
        if self.first_frame is None:
            self.first_frame = frame
        self.first_frame = min(self.first_frame, frame)
        self.last_frame = frame if self.last_frame is None else max(self.last_frame, frame)
