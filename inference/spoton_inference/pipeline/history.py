"""What a task adds to the history besides track points: identities and events.

:class:`TaskHistory` is fed by the runner, frame by frame, and hands rows to two sinks that
must not block (storage/history_writer.py queues them and writes them off the frame path):

* identity rows ``(task_id, environment_id, global_id, first_seen, last_seen, last_camera_id)``,
  for the identities seen since the last hand-over (the runner calls :meth:`TaskHistory.sync`
  about once a second of video);
* event rows ``(time, task_id, environment_id, camera_id, global_id, kind, global_frame_index,
  payload, event_key)``: camera appear/leave/hand-over (from the export writer) and zone
  entry/exit; ``event_key`` (:func:`event_key`) makes writing one event twice store it once.

Times are video time: the task's start plus frame index over fps, as for track points.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Protocol

from spoton_inference.domain.zones import Zone
from spoton_inference.pipeline.zone_tracker import ZoneTracker, ZoneTransition


class HistorySink(Protocol):
    """Takes history rows without blocking (storage/history_writer.py)."""

    def add_events(self, rows: list[tuple]) -> None: ...

    def add_identities(self, rows: list[tuple]) -> None: ...


# Camera events from pipeline/exports.py, under the names the events table uses.
CAMERA_EVENT_KINDS = {"appeared": "appear", "left": "leave", "handover": "handover"}


@dataclasses.dataclass(slots=True)
class _Span:
    first_frame: int
    last_frame: int
    last_camera: str


class TaskHistory:
    def __init__(
        self,
        task_id: uuid.UUID,
        environment_id: str,
        start: dt.datetime,
        fps: float,
        zones: Sequence[Zone],
        sink: HistorySink,
    ) -> None:
        self._task_id = task_id
        self._environment_id = environment_id
        self._start = start
        self._fps = fps
        # None without zones: then frames skip the map positions altogether.
        self._zones = ZoneTracker(zones, confirm_frames=max(1, round(fps * 0.3))) if zones else None
        self._sink = sink
        self._spans: dict[int, _Span] = {}
        self._changed: set[int] = set()

    def time_of(self, frame: int) -> dt.datetime:
        return self._start + dt.timedelta(seconds=frame / self._fps)

    def frame(self, frame: int, seen: Sequence[tuple[str, int, tuple[float, float] | None]]) -> list[ZoneTransition]:
        """Record one global frame's ``(camera_id, global_id, map_xy)``; returns zone entries and exits."""
        placed: dict[int, tuple[str, list[tuple[float, float]]]] = {}
        for camera_id, gid, xy in seen:
            span = self._spans.get(gid)
            if span is None:
                self._spans[gid] = _Span(frame, frame, camera_id)
            else:
                span.last_frame, span.last_camera = frame, camera_id
            self._changed.add(gid)
            if xy is not None and self._zones is not None:
                placed.setdefault(gid, (camera_id, []))[1].append(xy)
        if self._zones is None:
            return []
        # Seen by several cameras at once: the mean of their map positions.
        positions = {
            gid: (cam, (sum(p[0] for p in xys) / len(xys), sum(p[1] for p in xys) / len(xys)))
            for gid, (cam, xys) in placed.items()
        }
        transitions = self._zones.update(frame, positions)
        self._store_zone_events(transitions)
        return transitions

    def camera_event(self, kind: str, frame: int, camera_id: str, gid: int, **extra: object) -> None:
        """An event of the export writer (``appeared``, ``left``, ``handover``)."""
        self._sink.add_events([self._row(frame, camera_id, gid, CAMERA_EVENT_KINDS[kind], extra)])

    def sync(self) -> None:
        """Hand over the identities seen since the last call."""
        if not self._changed:
            return
        rows = []
        for gid in sorted(self._changed):
            span = self._spans[gid]
            first, last = self.time_of(span.first_frame), self.time_of(span.last_frame)
            rows.append((self._task_id, self._environment_id, gid, first, last, span.last_camera))
        self._changed.clear()
        self._sink.add_identities(rows)

    def close(self) -> list[ZoneTransition]:
        """End the task's history: open zone stays exit, identities are handed over."""
        transitions = self._zones.close() if self._zones is not None else []
        self._store_zone_events(transitions)
        self.sync()
        return transitions

    def _store_zone_events(self, transitions: list[ZoneTransition]) -> None:
        if transitions:
            self._sink.add_events(
                [
                    self._row(
                        t.global_frame_index,
                        t.camera_id,
                        t.global_id,
                        t.kind,
                        {"zone_id": t.zone_id, "zone_name": t.zone_name, "map_xy": list(t.map_xy)},
                    )
                    for t in transitions
                ]
            )

    def _row(self, frame: int, camera_id: str, gid: int, kind: str, payload: dict[str, object]) -> tuple:
        return (
            self.time_of(frame),
            self._task_id,
            self._environment_id,
            camera_id,
            gid,
            kind,
            frame,
            json.dumps(payload),
            event_key(kind, camera_id, gid, frame, payload.get("zone_id")),
        )


def event_key(kind: str, camera_id: str, gid: int, frame: int, zone_id: object = None) -> str:
    """What makes an event unique within its task, so that writing it twice stores it once.

    >>> event_key("zone_enter", "c1", 7, 120, "door")
    'zone_enter/c1/7/120/door'
    """
    return f"{kind}/{camera_id}/{gid}/{frame}/{zone_id or ''}"
