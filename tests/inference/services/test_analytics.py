"""Analytics over real PostgreSQL: trajectories, heatmaps (JSON and PNG), counts, dwell, zones."""

from __future__ import annotations

import collections
import datetime as dt
import functools
import re
import uuid

import cv2
import numpy as np
import pytest

from spoton_inference.domain.environment import Environment, FloorMap
from spoton_inference.domain.errors import AlreadyExists, InvalidArgument, NotFound
from spoton_inference.domain.geometry import HomographySpec
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.files import environment_dir, heatmap_png
from spoton_inference.services import analytics as module
from spoton_inference.services.analytics import Analytics, TimeRange
from spoton_inference.services.catalog import CameraSpec, Catalog, EnvironmentSpec
from spoton_inference.services.request_args import parse_uuid
from spoton_inference.storage.analytics_store import AnalyticsStore
from spoton_inference.storage.camera_health_store import CameraHealthStore
from spoton_inference.storage.catalog_store import CatalogStore
from spoton_inference.storage.environment_store import EnvironmentStore
from spoton_inference.storage.task_store import TaskStore

T0 = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=3)
SQUARE = ((0, 0), (640, 0), (640, 480), (0, 480))


def _camera(camera_id: str, x0: float) -> CameraSpec:
    homography = HomographySpec(image_points=SQUARE, map_points=tuple((x0 + u / 64, v / 64) for u, v in SQUARE))
    return CameraSpec(camera_id, fps=10, width=640, height=480, homography=homography)


async def _get_task(db, task_id: str) -> TaskRecord:
    """TaskManager.get, without the rest of a TaskManager."""
    record = await TaskStore(db).get_task(parse_uuid(task_id, "task id"))
    if record is None:
        raise NotFound(f"task {task_id!r} not found")
    return record


@pytest.fixture(scope="module")
async def analytics(db):
    catalog = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir)
    await catalog.load()
    await catalog.create_environment(EnvironmentSpec("hall", cameras=(_camera("c1", 0), _camera("c2", 5))))
    await catalog.create_environment(EnvironmentSpec("other", cameras=(_camera("c1", 0),)))
    return Analytics(AnalyticsStore(db), catalog, functools.partial(_get_task, db), paint_heatmap=heatmap_png.paint)


async def _task(db, environment_id: str = "hall") -> str:
    # A task row that never runs: unfinished, beside the others over the environment.
    return (await TaskStore(db).insert_task(environment_id, ["c1", "c2"], 100, concurrent=True)).task_id


def _row(task: str, camera: str, frame: int, gid: int, xy: tuple[float, float] | None, env: str = "hall") -> tuple:
    when = T0 + dt.timedelta(seconds=frame / 10)
    x, y = xy if xy is not None else (None, None)
    return (when, uuid.UUID(task), env, camera, frame, gid, gid, 0.0, 0.0, 10.0, 20.0, 0.5, x, y)


# -- trajectories ------------------------------------------------------------------------


async def test_a_trajectory_is_ordered_merged_across_cameras_and_split_into_segments(db, analytics):
    task = await _task(db)
    rows = [_row(task, "c1", f, 5, (f * 0.5, 1.0)) for f in range(10)]  # c1: frames 0-9
    rows += [_row(task, "c2", f, 5, (f * 0.5 + 0.2, 1.0)) for f in range(5, 15)]  # c2: 5-14, overlapping
    rows += [_row(task, "c1", f, 5, (20.0, 1.0 + (f - 40) * 0.5)) for f in range(40, 45)]  # c1 again after 2.5 s
    rows += [_row(task, "c1", f, 6, (9.0, 9.0)) for f in range(10)]  # someone else
    rows += [_row(task, "c2", 20, 5, None)]  # no map position: not on the trajectory
    rng = np.random.default_rng(1)
    await TaskStore(db).copy_track_points([rows[i] for i in rng.permutation(len(rows))])

    t = await analytics.trajectory(5, task_id=task)
    assert t.environment_id == "hall" and t.raw_point_count == 20
    frames = [p.global_frame_index for p in t.points]
    assert frames == [*range(15), *range(40, 45)]
    assert [p.time for p in t.points] == sorted(p.time for p in t.points)
    both = t.points[7]
    assert sorted(both.camera_ids) == ["c1", "c2"] and both.x == pytest.approx(3.5 + 0.1)
    assert [(s.camera_id, s.points[0].global_frame_index, s.points[-1].global_frame_index) for s in t.segments] == [
        ("c1", 0, 9),
        ("c2", 5, 14),
        ("c1", 40, 44),
    ]
    assert all(s.task_id == task for s in t.segments)

    # Along y = 1 to x = 20 (frame 40), then up: the corner and the ends are what is left.
    simple = await analytics.trajectory(5, task_id=task, simplify_tolerance_m=0.3)
    assert [p.global_frame_index for p in simple.points] == [0, 40, 44]
    assert [len(s.points) for s in simple.segments] == [2, 2, 2]
    assert simple.raw_point_count == 20 and simple.length_m == t.length_m

    narrow = await analytics.trajectory(
        5, task_id=task, span=TimeRange(T0 + dt.timedelta(seconds=0.5), T0 + dt.timedelta(seconds=1))
    )
    assert [p.global_frame_index for p in narrow.points] == [5, 6, 7, 8, 9]


async def test_by_environment_a_trajectory_spans_tasks_and_says_which(db, analytics):
    first, second = await _task(db, "other"), await _task(db, "other")
    await TaskStore(db).copy_track_points(
        [_row(first, "c1", f, 3, (f, 0), "other") for f in range(3)]
        + [_row(second, "c1", f, 3, (0, f), "other") for f in range(100, 103)]
    )
    t = await analytics.trajectory(3, environment_id="other")
    assert [(p.task_id, p.global_frame_index) for p in t.points] == [(first, f) for f in range(3)] + [
        (second, f) for f in range(100, 103)
    ]
    assert [s.task_id for s in t.segments] == [first, second]
    assert t.length_m == pytest.approx(4.0)  # 2 m in each task; no jump between them


# -- heatmaps ----------------------------------------------------------------------------


async def test_heatmap_counts_equal_a_brute_force_count(db, analytics):
    task = await _task(db)
    rng = np.random.default_rng(7)
    n = 5000
    xs, ys = rng.uniform(-3, 12, n), rng.uniform(0, 8, n)
    seconds = rng.uniform(0, 7200, n)
    cams = rng.choice(["c1", "c2"], n)
    rows = [
        (T0 + dt.timedelta(seconds=float(s)), uuid.UUID(task), "hall", str(c), i, 1, i % 50, 0.0, 0.0, 1.0, 1.0, 0.5)
        + ((None, None) if i % 97 == 0 else (float(x), float(y)))
        for i, (x, y, s, c) in enumerate(zip(xs, ys, seconds, cams, strict=True))
    ]
    await TaskStore(db).copy_track_points(rows)
    start, end = T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=90)

    heat = await analytics.heatmap(
        "hall", cell_size_m=0.75, span=TimeRange(start, end), camera_ids=["c2"], task_id=task
    )
    expected = collections.Counter(
        (int(np.floor(r[12] / 0.75)), int(np.floor(r[13] / 0.75)))
        for r in rows
        if r[12] is not None and r[3] == "c2" and start <= r[0] < end
    )
    got = dict(zip(zip(heat.ix.tolist(), heat.iy.tolist(), strict=True), heat.count.tolist(), strict=True))
    assert got == expected
    assert heat.total == sum(expected.values()) and heat.max_count == max(expected.values())
    assert heat.png == b""


async def test_heatmap_png_decodes_at_the_floor_plan_size_or_the_camera_extent(db, analytics, tmp_path):
    task = await _task(db)
    await TaskStore(db).copy_track_points([_row(task, "c1", f, 9, (2.2, 3.3)) for f in range(30)])
    plain = await analytics.heatmap("hall", cell_size_m=0.5, task_id=task, render_png=True)
    image = cv2.imdecode(np.frombuffer(plain.png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (plain.png_size[1], plain.png_size[0])
    # No floor plan: the cameras' map points (x 0-15 m, y 0-7.5 m) plus padding, 800 px wide.
    assert plain.png_size[0] == 800 and plain.png_size[1] == pytest.approx(800 * 8.5 / 16, abs=1)

    floor = tmp_path / "plan.png"
    cv2.imwrite(str(floor), np.full((100, 200, 3), 255, np.uint8))
    hall = analytics._catalog.get("hall")
    plan_env = Environment("planned", "Planned", FloorMap(floor, 0.05), hall.cameras)
    await EnvironmentStore(db).upsert_environment(plan_env)
    await analytics._catalog.load()
    await TaskStore(db).copy_track_points([_row(task, "c1", f, 9, (2.2, 3.3), "planned") for f in range(30)])
    over = await analytics.heatmap("planned", cell_size_m=0.5, render_png=True)
    image = cv2.imdecode(np.frombuffer(over.png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (100, 200, 3) and over.png_size == (200, 100)
    # The one hot cell, x 2.0-2.5 m, y 3.0-3.5 m, is pixels 40-49 x 60-69 at 0.05 m/px.
    assert (image[65, 45] != 255).any()
    assert (image[5, 5] == 255).all() and (image[65, 55] == 255).all()


# -- counts and dwell --------------------------------------------------------------------


async def test_counts_per_camera_and_zone_per_bucket(db, analytics):
    await EnvironmentStore(db).upsert_environment(
        Environment("counted", "Counted", FloorMap(), analytics._catalog.get("hall").cameras)
    )
    await analytics._catalog.load()
    await analytics.create_zone("counted", zone_id="west", name="West", polygon=[(0, 0), (5, 0), (5, 10), (0, 10)])
    task = await _task(db, "counted")

    def at(second: float, camera: str, gid: int, x: float) -> tuple:
        when = T0 + dt.timedelta(seconds=second)
        return (when, uuid.UUID(task), "counted", camera, int(second * 10), 1, gid, 0, 0, 1, 1, 0.5, x, 1.0)

    await TaskStore(db).copy_track_points(
        [
            at(1, "c1", 1, 1.0),  # minute 0: c1 sees 1 and 2; only 1 is in the west zone
            at(2, "c1", 2, 8.0),
            at(3, "c1", 1, 1.5),
            at(61, "c1", 1, 2.0),  # minute 1: c1 sees 1, c2 sees 2 (who walked west)
            at(62, "c2", 2, 4.0),
            at(125, "c2", 2, 9.0),  # minute 2: nobody in the zone
        ]
    )
    counts = await analytics.counts("counted", bucket_seconds=60, span=TimeRange(T0, T0 + dt.timedelta(hours=1)))
    minute = lambda k: T0 + dt.timedelta(minutes=k)  # noqa: E731
    assert [(c.bucket_start, c.key, c.people) for c in counts.cameras] == [
        (minute(0), "c1", 2),
        (minute(1), "c1", 1),
        (minute(1), "c2", 1),
        (minute(2), "c2", 1),
    ]
    assert [(c.bucket_start, c.key, c.people) for c in counts.zones] == [(minute(0), "west", 1), (minute(1), "west", 2)]
    only_c2 = await analytics.counts("counted", bucket_seconds=3600, camera_ids=["c2"], span=TimeRange(T0))
    assert [(c.key, c.people) for c in only_c2.cameras] == [("c2", 1)]


async def test_dwell_sums_time_inside_each_zone_per_identity(db, analytics):
    await EnvironmentStore(db).upsert_environment(
        Environment("dwelt", "Dwelt", FloorMap(), analytics._catalog.get("hall").cameras)
    )
    await analytics._catalog.load()
    await analytics.create_zone("dwelt", zone_id="desk", name="Desk", polygon=[(0, 0), (2, 0), (2, 2), (0, 2)])
    task = await _task(db, "dwelt")

    def at(second: float, camera: str, gid: int, x: float) -> tuple:
        when = T0 + dt.timedelta(seconds=second)
        return (when, uuid.UUID(task), "dwelt", camera, int(second * 10), 1, gid, 0, 0, 1, 1, 0.5, x, 1.0)

    rows = [at(s / 2, "c1", 4, 1.0) for s in range(21)]  # 0-10 s at the desk
    rows += [at(s / 2, "c2", 4, 1.1) for s in range(21)]  # ... seen by two cameras at once
    rows += [at(20 + s / 2, "c1", 4, 1.0) for s in range(11)]  # back 20-25 s (the 10 s away does not count)
    rows += [at(30 + s, "c1", 4, 5.0) for s in range(5)]  # elsewhere
    rows += [at(s, "c1", 8, 0.5) for s in range(4)]  # someone else, 3 s
    await TaskStore(db).copy_track_points(rows)

    dwell = await analytics.dwell("dwelt")
    assert dwell.environment_id == "dwelt"
    assert [(e.zone_id, e.global_id, round(e.dwell_seconds, 6)) for e in dwell.entries] == [
        ("desk", 4, 15.0),
        ("desk", 8, 3.0),
    ]
    four = dwell.entries[0]
    assert (four.first_time, four.last_time) == (T0, T0 + dt.timedelta(seconds=25))
    assert [e.global_id for e in (await analytics.dwell("dwelt", global_id=8, task_id=task)).entries] == [8]


# -- zones and validation ----------------------------------------------------------------


async def test_zone_crud(analytics):
    made = await analytics.create_zone("other", zone_id="", name="Entrance", polygon=[(0, 0), (1, 0), (1, 1)])
    assert made.zone_id.startswith("zone-") and made.polygon == ((0, 0), (1, 0), (1, 1))
    assert await analytics.get_zone("other", made.zone_id) == made
    with pytest.raises(AlreadyExists):
        await analytics.create_zone("other", zone_id=made.zone_id, name="", polygon=[(0, 0), (1, 0), (1, 1)])
    moved = await analytics.update_zone("other", made.zone_id, polygon=[(0, 0), (2, 0), (2, 2), (0, 2)])
    assert moved.name == "Entrance" and len(moved.polygon) == 4 and moved.updated_at >= made.updated_at
    renamed = await analytics.update_zone("other", made.zone_id, name="Front door")
    assert renamed.name == "Front door" and renamed.polygon == moved.polygon
    assert made.zone_id in [z.zone_id for z in await analytics.list_zones("other")]
    await analytics.delete_zone("other", made.zone_id)
    with pytest.raises(NotFound, match="not found in environment 'other'"):
        await analytics.get_zone("other", made.zone_id)
    with pytest.raises(NotFound):
        await analytics.delete_zone("other", made.zone_id)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda a: a.heatmap("hall", cell_size_m=0), InvalidArgument, "cell_size_m must be at least"),
        (lambda a: a.heatmap("nowhere", cell_size_m=1), NotFound, "environment 'nowhere' not found"),
        (lambda a: a.heatmap("hall", cell_size_m=1, camera_ids=["c9"]), InvalidArgument, "cameras ['c9']"),
        (
            lambda a: a.heatmap("hall", cell_size_m=1, span=TimeRange(T0, T0)),
            InvalidArgument,
            "end_time",
        ),
        (lambda a: a.counts("hall", bucket_seconds=0), InvalidArgument, "bucket_seconds"),
        # Found by the gRPC fuzz test: a width near int64's limit overflowed PostgreSQL's interval.
        (lambda a: a.counts("hall", bucket_seconds=2**62), InvalidArgument, "a century"),
        (lambda a: a.counts("hall", bucket_seconds=60, zone_ids=["zz"]), InvalidArgument, "zones ['zz']"),
        (lambda a: a.trajectory(0, environment_id="hall"), InvalidArgument, "global_id"),
        (lambda a: a.trajectory(1), InvalidArgument, "environment_id (or task_id) is required"),
        (lambda a: a.trajectory(1, task_id="nope"), InvalidArgument, "not a UUID"),
        (lambda a: a.trajectory(1, task_id=str(uuid.uuid4())), NotFound, "task"),
        (lambda a: a.trajectory(1, environment_id="hall", simplify_tolerance_m=-1), InvalidArgument, "tolerance"),
        (
            lambda a: a.create_zone("hall", zone_id="z", name="", polygon=[(0, 0), (1, 1)]),
            InvalidArgument,
            "at least 3 points",
        ),
        (
            lambda a: a.create_zone("hall", zone_id="z", name="", polygon=[(0, 0), (2, 2), (2, 0), (0, 2)]),
            InvalidArgument,
            "self-intersecting",
        ),
        (
            lambda a: a.create_zone("hall", zone_id="bad id!", name="", polygon=[(0, 0), (1, 0), (1, 1)]),
            InvalidArgument,
            "zone id",
        ),
        (lambda a: a.list_zones("nowhere"), NotFound, "nowhere"),
    ],
)
async def test_bad_requests_say_what_to_fix(analytics, call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        await call(analytics)


async def test_a_task_and_another_environment_do_not_mix(db, analytics):
    task = await _task(db, "hall")
    with pytest.raises(InvalidArgument, match="ran over environment 'hall', not 'other'"):
        await analytics.trajectory(1, task_id=task, environment_id="other")


async def test_with_timescaledb_counts_use_time_bucket(db, analytics):
    # A stand-in with TimescaleDB's signature, time_bucket(bucket_width, ts, origin), that counts its calls.
    async with db.pool.acquire() as conn:
        await conn.execute(
            """CREATE SEQUENCE time_bucket_calls;
               CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz, origin timestamptz)
               RETURNS timestamptz LANGUAGE sql VOLATILE
               AS $$ SELECT date_bin(bucket_width, ts, origin) FROM (SELECT nextval('time_bucket_calls')) AS c $$"""
        )
    await EnvironmentStore(db).upsert_environment(
        Environment("bucketed", "B", FloorMap(), analytics._catalog.get("hall").cameras)
    )
    await analytics._catalog.load()
    await analytics.create_zone("bucketed", zone_id="all", name="All", polygon=[(0, 0), (9, 0), (9, 9), (0, 9)])
    task = await _task(db, "bucketed")
    await TaskStore(db).copy_track_points(
        [_row(task, "c1", f * 50, 1 + f % 2, (1.0, 1.0), "bucketed") for f in range(20)]
    )

    timescale = Analytics(
        AnalyticsStore(db, timescale=True), analytics._catalog, analytics._get_task, paint_heatmap=heatmap_png.paint
    )
    kwargs = {"bucket_seconds": 30, "span": TimeRange(T0)}
    assert await timescale.counts("bucketed", **kwargs) == await analytics.counts("bucketed", **kwargs)
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT last_value FROM time_bucket_calls") == 40  # 20 points, twice


async def test_a_trajectory_too_long_for_one_answer_asks_for_a_narrower_range(db, analytics, monkeypatch):
    task = await _task(db)
    await TaskStore(db).copy_track_points([_row(task, "c1", f, 11, (f, 0)) for f in range(20)])
    monkeypatch.setattr(module, "MAX_TRAJECTORY_POINTS", 19)
    with pytest.raises(InvalidArgument, match="more than 19 track points in this range; narrow it"):
        await analytics.trajectory(11, task_id=task)
    monkeypatch.setattr(module, "MAX_TRAJECTORY_POINTS", 20)
    assert (await analytics.trajectory(11, task_id=task)).raw_point_count == 20
