"""Per-task export files, written as the task runs so nothing is held in memory.

- ``<camera_id>.global.txt`` / ``<camera_id>.local.txt``: MOTChallenge
  ``frame,id,x,y,w,h,conf,-1,-1,-1`` with frame = global frame index + 1, id the global or
  local track id;
- ``trajectories.csv``: ``frame,global_id,map_x,map_y``;
- ``events.json``: person appeared / left a camera, hand-overs between cameras, and zone
  entries and exits (``zone_enter`` / ``zone_exit``, with the zone and the map point);
- ``<camera_id>.detections.txt``: every raw detection the tracker was given, in the
  MOTChallenge detection format (id -1), so other trackers can be run on exactly the same
  input (``bench/accuracy.py`` does);
- for refined tasks, ``<camera_id>.online.global.txt`` / ``<camera_id>.online.local.txt``:
  the online (live) result the refinement replaced, for comparison (:class:`MotWriter`);
- ``tracking.json``: what the task fitted its Re-ID distances to
  (:mod:`spoton_inference.tracking.calibration`) and each refinement window's wall time.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from spoton_inference.domain.events import CameraTracksOut, TrackingUpdate, TrackOut

EXPORT_MEDIA_TYPES = {".txt": "text/plain", ".csv": "text/csv", ".json": "application/json"}


class MotWriter:
    """MOTChallenge files per camera, ``<cam>.<infix>global.txt`` and ``<cam>.<infix>local.txt``."""

    def __init__(self, out_dir: Path, camera_ids: list[str], infix: str = "") -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[tuple[str, str], IO[str]] = {}
        for cam in camera_ids:
            for kind in ("global", "local"):
                self._files[(cam, kind)] = (out_dir / f"{cam}.{infix}{kind}.txt").open("w")

    def add(self, update: TrackingUpdate) -> None:
        mot_frame = update.global_frame_index + 1
        for cam in update.cameras:
            g, loc = self._files[(cam.camera_id, "global")], self._files[(cam.camera_id, "local")]
            for t in cam.tracks:
                x1, y1, x2, y2 = t.box
                geom = f"{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{t.score:.4f},-1,-1,-1\n"
                g.write(f"{mot_frame},{t.global_id},{geom}")
                loc.write(f"{mot_frame},{t.track_id},{geom}")

    def close(self) -> None:
        for f in self._files.values():
            f.close()


def rewrite_mot(out_dir: Path, camera_ids: Sequence[str], points: Iterable[Sequence]) -> int:
    """Rewrite ``<cam>.global.txt`` / ``<cam>.local.txt`` from stored track points; returns the
    number of points written.

    ``points``: (camera_id, global_frame_index, local_id, global_id, x1, y1, x2, y2, score,
    map_x, map_y) in frame order, as ``TaskStore.task_track_points`` returns them. For a task
    whose process died mid-run, so that its exports say what was stored, not what happened to
    leave the process's file buffers.
    """
    mot, written = MotWriter(out_dir, list(camera_ids)), 0
    try:
        for frame, rows in itertools.groupby(points, key=lambda p: p[1]):
            by_camera: dict[str, list[TrackOut]] = {}
            for camera_id, _, local_id, global_id, x1, y1, x2, y2, score, map_x, map_y in rows:
                map_xy = (map_x, map_y) if map_x is not None and map_y is not None else None
                by_camera.setdefault(camera_id, []).append(
                    TrackOut((x1, y1, x2, y2), score, local_id, global_id, map_xy)
                )
                written += 1
            cameras = [CameraTracksOut(cam, "", 0, tracks) for cam, tracks in by_camera.items() if cam in camera_ids]
            mot.add(TrackingUpdate(frame, "", 0.0, cameras))
    finally:
        mot.close()
    return written


@dataclasses.dataclass(slots=True)
class _Presence:
    first_frame: int
    last_frame: int


class ExportWriter:
    """Streams a task's tracking updates into export files under ``out_dir``."""

    def __init__(
        self,
        out_dir: Path,
        camera_ids: list[str],
        fps: float,
        leave_after_frames: int = 10,
        on_event: Callable[..., None] | None = None,
    ) -> None:
        """``on_event(kind, frame, camera_id, global_id, **extra)`` also gets every event (0-based frame)."""
        self.out_dir = out_dir
        self._on_event = on_event
        out_dir.mkdir(parents=True, exist_ok=True)
        self._fps = fps
        self._leave_after = leave_after_frames
        self._mot = MotWriter(out_dir, camera_ids)
        self._detections = {cam: (out_dir / f"{cam}.detections.txt").open("w") for cam in camera_ids}
        self._traj = (out_dir / "trajectories.csv").open("w")
        self._traj.write("frame,global_id,map_x,map_y\n")
        self._present: dict[tuple[str, int], _Presence] = {}
        self._last_camera: dict[int, tuple[str, int]] = {}
        self._events: list[dict[str, object]] = []

    def add(self, update: TrackingUpdate) -> None:
        frame = update.global_frame_index
        mot_frame = frame + 1
        self._mot.add(update)
        for cam in update.cameras:
            seen_here: set[int] = set()
            for t in cam.tracks:
                if t.map_coords is not None and t.global_id not in seen_here:
                    self._traj.write(f"{mot_frame},{t.global_id},{t.map_coords[0]:.4f},{t.map_coords[1]:.4f}\n")
                seen_here.add(t.global_id)
                self._see(cam.camera_id, t.global_id, frame)
        self._expire(frame)

    def add_zone_event(
        self, kind: str, frame: int, camera_id: str, gid: int, zone_id: str, zone_name: str, map_xy: tuple[float, float]
    ) -> None:
        """A zone entry or exit (``kind`` ``zone_enter``/``zone_exit``, 0-based frame) for events.json.

        Only the file: the history stores zone events itself.
        """
        self._events.append(
            {
                **self._event_fields(kind, frame, camera_id, gid),
                "zone_id": zone_id,
                "zone_name": zone_name,
                "map_xy": [round(v, 4) for v in map_xy],
            }
        )

    def add_detections(self, camera_id: str, global_frame_index: int, boxes: np.ndarray, scores: np.ndarray) -> None:
        out = self._detections[camera_id]
        for (x1, y1, x2, y2), score in zip(boxes.tolist(), scores.tolist(), strict=True):
            out.write(
                f"{global_frame_index + 1},-1,{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1\n"
            )

    def write_json(self, name: str, doc: object) -> None:
        """A JSON document beside the exports (``tracking.json``, say)."""
        (self.out_dir / name).write_text(json.dumps(doc, indent=1))

    def close(self) -> list[Path]:
        """Flush open presences as 'left', write events.json, and return the files written."""
        for (cam, gid), p in sorted(self._present.items(), key=lambda kv: kv[1].last_frame):
            self._event("left", p.last_frame, cam, gid)
        self._present.clear()
        self._mot.close()
        for f in [*self._detections.values(), self._traj]:
            f.close()
        # Within a frame: leaving before the rest, zone exits before entries.
        order = {"left": 0, "zone_exit": 1}
        self._events.sort(key=lambda e: (e["frame"], order.get(str(e["type"]), 2)))
        (self.out_dir / "events.json").write_text(json.dumps({"events": self._events}, indent=1))
        return sorted(self.out_dir.iterdir())

    def _see(self, camera_id: str, gid: int, frame: int) -> None:
        key = (camera_id, gid)
        presence = self._present.get(key)
        if presence is not None:
            presence.last_frame = frame
            return
        self._present[key] = _Presence(frame, frame)
        self._event("appeared", frame, camera_id, gid)
        previous = self._last_camera.get(gid)
        if previous is not None and previous[0] != camera_id:
            self._event("handover", frame, camera_id, gid, from_camera=previous[0])
        self._last_camera[gid] = (camera_id, frame)

    def _expire(self, frame: int) -> None:
        gone = [k for k, p in self._present.items() if frame - p.last_frame > self._leave_after]
        for cam, gid in gone:
            self._event("left", self._present.pop((cam, gid)).last_frame, cam, gid)

    def _event(self, kind: str, frame: int, camera_id: str, gid: int, **extra: object) -> None:
        if self._on_event is not None:
            self._on_event(kind, frame, camera_id, gid, **extra)
        self._events.append({**self._event_fields(kind, frame, camera_id, gid), **extra})

    def _event_fields(self, kind: str, frame: int, camera_id: str, gid: int) -> dict[str, object]:
        return {
            "type": kind,
            "frame": frame + 1,
            "time_s": round(frame / self._fps, 3),
            "camera_id": camera_id,
            "global_id": gid,
        }
