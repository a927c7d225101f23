"""Zone entry and exit from a hand-built path, and the history rows a task hands over."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from spoton_inference.domain.zones import Zone
from spoton_inference.pipeline.history import TaskHistory
from spoton_inference.pipeline.zone_tracker import ENTER, EXIT, ZoneTracker

ROOM = Zone("env", "room", "Room", ((0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0)))
DESK = Zone("env", "desk", "Desk", ((1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 2.0)))


def _walk(tracker: ZoneTracker, path: list[tuple[float, float] | None], gid: int = 7, camera: str = "c1"):
    """Feed one position per frame (None: not seen); returns (kind, zone, frame) of each transition."""
    out = []
    for frame, xy in enumerate(path):
        positions = {} if xy is None else {gid: (camera, xy)}
        out += [(t.kind, t.zone_id, t.global_frame_index) for t in tracker.update(frame, positions)]
    return out


def test_walking_in_and_out_gives_one_entry_and_one_exit_dated_at_the_crossing():
    tracker = ZoneTracker([ROOM], confirm_frames=3)
    path = [(-2.25 + 0.5 * f, 2.0) for f in range(13)]  # x from -2.25 to 3.75: inside from frame 5
    path += [(4.5 + 0.5 * f, 2.0) for f in range(6)]  # out from frame 13
    assert _walk(tracker, path) == [(ENTER, "room", 5), (EXIT, "room", 13)]


def test_jitter_on_the_border_does_not_flap():
    tracker = ZoneTracker([ROOM], confirm_frames=3)
    xs = [-0.1, 0.1, -0.1, 0.1, 0.1, -0.1, 0.1, 0.2, 0.3, 0.4, -0.1, 0.2, -0.2, -0.3, -0.4]
    assert _walk(tracker, [(x, 2.0) for x in xs]) == [(ENTER, "room", 6), (EXIT, "room", 12)]


def test_nested_zones_and_a_person_who_vanishes_inside():
    tracker = ZoneTracker([ROOM, DESK], confirm_frames=2, leave_after_frames=3)
    path = [(0.5, 0.5)] * 3 + [(1.5, 1.5)] * 4 + [None] * 5
    assert _walk(tracker, path) == [
        (ENTER, "room", 0),
        (ENTER, "desk", 3),
        (EXIT, "room", 6),  # unseen for more than 3 frames: out at the last sighting
        (EXIT, "desk", 6),
    ]


def test_closing_ends_every_open_stay():
    tracker = ZoneTracker([ROOM], confirm_frames=1)
    tracker.update(0, {1: ("c1", (1.0, 1.0)), 2: ("c2", (3.0, 3.0))})
    tracker.update(1, {1: ("c1", (1.2, 1.0))})
    closed = tracker.close()
    assert sorted((t.global_id, t.kind, t.global_frame_index, t.camera_id) for t in closed) == [
        (1, EXIT, 1, "c1"),
        (2, EXIT, 0, "c2"),
    ]
    assert tracker.close() == []


class _Sink:
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.identities: list[tuple] = []

    def add_events(self, rows: list[tuple]) -> None:
        self.events += rows

    def add_identities(self, rows: list[tuple]) -> None:
        self.identities += rows


def test_task_history_rows():
    sink, task = _Sink(), uuid.uuid4()
    start = dt.datetime(2025, 5, 1, 12, tzinfo=dt.UTC)
    history = TaskHistory(task, "env", start, 10.0, [ROOM], sink)
    for frame in range(6):
        # Person 3 seen by two cameras either side of the room's edge: the mean (0.5, 2) is inside.
        seen = [("c1", 3, (-0.5, 2.0)), ("c2", 3, (1.5, 2.0)), ("c2", 4, None)]
        transitions = history.frame(frame, seen if frame < 5 else [("c2", 3, (9.0, 9.0))])
        if frame == 2:
            history.sync()
    assert [t.kind for t in transitions] == []  # leaving needs 3 frames outside
    history.camera_event("handover", 4, "c2", 3, from_camera="c1")
    history.close()

    # (global id, first seen, last seen, last camera), at the sync and at the close.
    seconds = lambda s: start + dt.timedelta(seconds=s)  # noqa: E731
    assert [(r[2], r[3], r[4], r[5]) for r in sink.identities] == [
        (3, start, seconds(0.2), "c2"),
        (4, start, seconds(0.2), "c2"),
        (3, start, seconds(0.5), "c2"),
        (4, start, seconds(0.4), "c2"),
    ]
    kinds = [(r[5], r[4], r[6], r[3]) for r in sink.events]
    # In from frame 0; the handover; at the close, out since frame 5 (the first frame outside).
    assert kinds == [("zone_enter", 3, 0, "c1"), ("handover", 3, 4, "c2"), ("zone_exit", 3, 5, "c2")]
    assert all(r[1] == task and r[2] == "env" for r in sink.events)
    assert json.loads(sink.events[1][7]) == {"from_camera": "c1"}
    assert json.loads(sink.events[0][7]) == {"zone_id": "room", "zone_name": "Room", "map_xy": [0.5, 2.0]}
