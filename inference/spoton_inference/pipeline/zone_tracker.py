"""Zone entry and exit per global id, from map positions, with a little hysteresis.

A person enters a zone once their map position has been inside it for ``confirm_frames``
consecutive frames, and exits once it has been outside for as many; the event is dated at
the first frame of that run, so dwell is not shortened by the confirmation. Someone unseen
for more than ``leave_after_frames`` while inside exits at the last frame they were seen,
and :meth:`ZoneTracker.close` ends every stay still open.

Example:
    >>> from spoton_inference.domain.zones import Zone
    >>> zt = ZoneTracker([Zone("env", "door", "Door", ((0, 0), (2, 0), (2, 2), (0, 2)))], confirm_frames=2)
    >>> [t.kind for f in range(4) for t in zt.update(f, {7: ("c1", (1.0, 1.0))})]
    ['zone_enter']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from spoton_inference.domain.zones import Zone, bounds, contains

ENTER, EXIT = "zone_enter", "zone_exit"


@dataclasses.dataclass(frozen=True, slots=True)
class ZoneTransition:
    kind: str  # ENTER or EXIT
    zone_id: str
    zone_name: str
    global_id: int
    global_frame_index: int
    camera_id: str
    map_xy: tuple[float, float]


@dataclasses.dataclass(slots=True)
class _Stay:
    """One global id against one zone."""

    inside: bool = False
    # The current run of frames that disagree with ``inside``: its first frame, camera and spot.
    streak: int = 0
    streak_start: tuple[int, str, tuple[float, float]] | None = None
    last_seen: tuple[int, str, tuple[float, float]] | None = None


class ZoneTracker:
    """Which global ids are in which zones, for one task."""

    def __init__(self, zones: Sequence[Zone], *, confirm_frames: int = 3, leave_after_frames: int = 10) -> None:
        self._zones = [(z, bounds(z.polygon)) for z in zones]
        self._by_id = {z.zone_id: z for z in zones}
        self._confirm = max(1, confirm_frames)
        self._leave_after = leave_after_frames
        self._stays: dict[tuple[int, str], _Stay] = {}

    def update(self, frame: int, positions: Mapping[int, tuple[str, tuple[float, float]]]) -> list[ZoneTransition]:
        """``positions``: global id -> (camera id, map position) for everyone placed on the map this frame."""
        out: list[ZoneTransition] = []
        if not self._zones:
            return out
        for gid, (camera_id, (x, y)) in positions.items():
            for zone, (x0, y0, x1, y1) in self._zones:
                inside = x0 <= x <= x1 and y0 <= y <= y1 and contains(zone.polygon, x, y)
                key = (gid, zone.zone_id)
                stay = self._stays.get(key)
                if stay is None:
                    if not inside:
                        continue
                    stay = self._stays[key] = _Stay()
                seen = (frame, camera_id, (x, y))
                stay.last_seen = seen
                if inside == stay.inside:
                    if not inside:  # an entry that was not confirmed: forget it
                        del self._stays[key]
                    stay.streak, stay.streak_start = 0, None
                    continue
                if stay.streak == 0:
                    stay.streak_start = seen
                stay.streak += 1
                if stay.streak >= self._confirm:
                    stay.inside, stay.streak = inside, 0
                    assert stay.streak_start is not None
                    out.append(_transition(ENTER if inside else EXIT, zone, gid, stay.streak_start))
                    if not inside:
                        del self._stays[key]
        out += self._expire(frame, positions)
        return out

    def close(self) -> list[ZoneTransition]:
        """Exits for every stay still open (the task is over)."""
        return self._end(list(self._stays))

    def _expire(self, frame: int, positions: Mapping[int, object]) -> list[ZoneTransition]:
        gone = [
            key
            for key, stay in self._stays.items()
            if key[0] not in positions and stay.last_seen is not None and frame - stay.last_seen[0] > self._leave_after
        ]
        return self._end(gone)

    def _end(self, keys: list[tuple[int, str]]) -> list[ZoneTransition]:
        out = []
        for gid, zone_id in keys:
            stay = self._stays.pop((gid, zone_id))
            # Out since the streak began, else (vanished while inside) at the last sighting.
            at = stay.streak_start if stay.streak else stay.last_seen
            if stay.inside and at is not None:
                out.append(_transition(EXIT, self._by_id[zone_id], gid, at))
        return out


def _transition(kind: str, zone: Zone, gid: int, at: tuple[int, str, tuple[float, float]]) -> ZoneTransition:
    frame, camera_id, xy = at
    return ZoneTransition(kind, zone.zone_id, zone.name, gid, frame, camera_id, xy)
