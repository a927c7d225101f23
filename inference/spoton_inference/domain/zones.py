"""Zones: named polygons on an environment's floor plan, in map metres.

A zone's polygon is a simple polygon: 3 to ``MAX_VERTICES`` distinct vertices, finite, with
an area, and no edge crossing or touching another. Either winding is accepted; a closing
vertex equal to the first is dropped.

Example:
    >>> square = validate_polygon([(0, 0), (4, 0), (4, 4), (0, 4)])
    >>> contains(square, 1.0, 1.0), contains(square, 5.0, 1.0)
    (True, False)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import uuid
from collections.abc import Sequence

from spoton_inference.domain.environment import require_id
from spoton_inference.domain.errors import InvalidArgument

Point = tuple[float, float]
Polygon = tuple[Point, ...]
MAX_VERTICES = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class Zone:
    environment_id: str
    zone_id: str
    name: str
    polygon: Polygon
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


def new_zone(zone_id: str, name: str, polygon: Sequence[Sequence[float]]) -> tuple[str, str, Polygon]:
    """A new zone's id (generated when empty), name (the id when empty) and validated polygon."""
    zone_id = require_id(zone_id, "zone id") if zone_id else f"zone-{uuid.uuid4().hex[:8]}"
    return zone_id, name or zone_id, validate_polygon(polygon)


def validate_polygon(points: Sequence[Sequence[float]]) -> Polygon:
    """The polygon as a tuple of (x, y); InvalidArgument says what is wrong with it."""
    poly = tuple((float(p[0]), float(p[1])) for p in points)
    if len(poly) > 1 and poly[0] == poly[-1]:
        poly = poly[:-1]
    if len(poly) < 3:
        raise InvalidArgument(f"a zone polygon needs at least 3 points [x, y] in map metres, got {len(poly)}")
    if len(poly) > MAX_VERTICES:
        raise InvalidArgument(f"a zone polygon may have at most {MAX_VERTICES} points, got {len(poly)}")
    if not all(math.isfinite(v) for p in poly for v in p):
        raise InvalidArgument("zone polygon coordinates must be finite numbers")
    for i, p in enumerate(poly):
        if p == poly[i - 1]:
            raise InvalidArgument(f"zone polygon point {i} repeats the point before it: {list(p)}")
    if all(_orient(poly[0], poly[1], p) == 0 for p in poly[2:]):
        raise InvalidArgument("zone polygon has no area: its points lie on one line")
    crossing = _first_crossing(poly)
    if crossing is not None:
        i, j = crossing
        raise InvalidArgument(
            f"zone polygon is self-intersecting: edge {i} ({_edge(poly, i)}) crosses edge {j} ({_edge(poly, j)}); "
            "list the points in order around the zone"
        )
    return poly


def contains(poly: Polygon, x: float, y: float) -> bool:
    """Whether (x, y) is inside ``poly`` (even-odd ray casting; points on an edge may go either way)."""
    inside = False
    x0, y0 = poly[-1]
    for x1, y1 in poly:
        if (y1 > y) != (y0 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
        x0, y0 = x1, y1
    return inside


def bounds(poly: Polygon) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in poly], [p[1] for p in poly]
    return min(xs), min(ys), max(xs), max(ys)


def _edge(poly: Polygon, i: int) -> str:
    a, b = poly[i], poly[(i + 1) % len(poly)]
    return f"{list(a)} -> {list(b)}"


def _first_crossing(poly: Polygon) -> tuple[int, int] | None:
    """The first pair of edges that intersect other than at a shared corner, else None."""
    n = len(poly)
    for i in range(n):
        # Neighbouring edges share a corner; they overlap only when the second folds back.
        a, b, c = poly[i], poly[(i + 1) % n], poly[(i + 2) % n]
        if _orient(a, b, c) == 0 and (a[0] - b[0]) * (c[0] - b[0]) + (a[1] - b[1]) * (c[1] - b[1]) > 0:
            return i, (i + 1) % n
    for i in range(n):
        for j in range(i + 2, n - (i == 0)):
            if _segments_intersect(poly[i], poly[(i + 1) % n], poly[j], poly[(j + 1) % n]):
                return i, j
    return None


def _orient(p: Point, q: Point, r: Point) -> int:
    v = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    scale = max(abs(q[0] - p[0]) + abs(q[1] - p[1]), abs(r[0] - p[0]) + abs(r[1] - p[1]), 1.0)
    return 0 if abs(v) <= 1e-12 * scale * scale else (1 if v > 0 else -1)


def _segments_intersect(a: Point, b: Point, c: Point, d: Point) -> bool:
    o1, o2, o3, o4 = _orient(a, b, c), _orient(a, b, d), _orient(c, d, a), _orient(c, d, b)
    if o1 != o2 and o3 != o4 and 0 not in (o1, o2, o3, o4):
        return True

    def within(p: Point, q: Point, r: Point) -> bool:  # r, collinear with p-q, lies inside its box
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    return (
        (o1 == 0 and within(a, b, c))
        or (o2 == 0 and within(a, b, d))
        or (o3 == 0 and within(c, d, a))
        or (o4 == 0 and within(c, d, b))
    )
