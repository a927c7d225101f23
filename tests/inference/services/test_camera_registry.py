"""The camera registry on real PostgreSQL: groups, the new camera fields, import and export,
and the summary; each checked again through a freshly loaded catalogue (a restart)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging

import pytest

from spoton_inference.domain.camera_health import HealthCheck
from spoton_inference.domain.camera_source import SourceInput, SourceKind
from spoton_inference.domain.environment import CameraGroup
from spoton_inference.domain.errors import AlreadyExists, InvalidArgument, NotFound
from spoton_inference.files import camera_io, environment_dir
from spoton_inference.files.camera_io import FileFormat
from spoton_inference.services.catalog import CameraPatch, CameraSpec, Catalog, EnvironmentSpec, GroupPatch
from spoton_inference.storage.camera_health_store import CameraHealthStore
from spoton_inference.storage.catalog_store import CatalogStore
from spoton_inference.storage.environment_store import EnvironmentStore

SECRET = "pa55-w0rd-xyz"
SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100]]


@pytest.fixture(scope="module")
async def catalog(db) -> Catalog:
    catalog = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir)
    await catalog.load()
    return catalog


async def _reloaded(db) -> Catalog:
    fresh = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir)
    await fresh.load()
    return fresh


async def test_groups_crud_and_persist(catalog, db):
    await catalog.create_environment(EnvironmentSpec("groups", cameras=(CameraSpec("a", fps=10),)))
    group = await catalog.create_group("groups", CameraGroup("floor-1", "", "First floor"))
    assert (group.name, group.description) == ("floor-1", "First floor")
    with pytest.raises(AlreadyExists):
        await catalog.create_group("groups", CameraGroup("floor-1", "again"))
    with pytest.raises(InvalidArgument, match="group_id must be"):
        await catalog.create_group("groups", CameraGroup("has space", "x"))
    await catalog.update_group("groups", "floor-1", GroupPatch(name="Ground floor"))
    await catalog.update_camera("groups", "a", CameraPatch(group_id="floor-1"))
    reloaded = await _reloaded(db)
    assert reloaded.group("groups", "floor-1") == CameraGroup("floor-1", "Ground floor", "First floor")
    assert reloaded.camera("groups", "a").group_id == "floor-1"

    # Deleting a group keeps its cameras, in no group (in the cache and in PostgreSQL).
    await catalog.delete_group("groups", "floor-1")
    with pytest.raises(NotFound):
        catalog.group("groups", "floor-1")
    assert catalog.camera("groups", "a").group_id is None
    assert (await _reloaded(db)).camera("groups", "a").group_id is None
    with pytest.raises(InvalidArgument, match="not a camera group"):
        await catalog.update_camera("groups", "a", CameraPatch(group_id="floor-1"))


async def test_new_fields_round_trip_and_the_password_is_kept_until_cleared(catalog, db):
    await catalog.create_environment(EnvironmentSpec("fields"))
    await catalog.create_group("fields", CameraGroup("lobby", "Lobby"))
    spec = CameraSpec(
        "door",
        fps=15,
        group_id="lobby",
        source=SourceInput(SourceKind.RTSP, f"rtsp://admin:{SECRET}@10.0.0.5/live"),
        detection_threshold=0.4,
        location="Lobby, north wall",
        enabled=False,
    )
    created = await catalog.create_camera("fields", spec)
    assert (created.source.url, created.source.username, created.source.password) == (
        "rtsp://10.0.0.5/live",
        "admin",
        SECRET,
    )
    stored = (await _reloaded(db)).camera("fields", "door")
    assert stored == created
    assert (stored.group_id, stored.detection_threshold, stored.location, stored.enabled) == (
        "lobby",
        0.4,
        "Lobby, north wall",
        False,
    )

    # Another path on the same host keeps the password; another host drops it (bound to its host).
    repathed = await catalog.update_camera(
        "fields", "door", CameraPatch(source=SourceInput(None, "rtsp://10.0.0.5/main", "admin"))
    )
    assert (repathed.source.url, repathed.source.password) == ("rtsp://10.0.0.5/main", SECRET)
    moved = await catalog.update_camera(
        "fields", "door", CameraPatch(source=SourceInput(None, "rtsp://10.0.0.6/live", "admin"))
    )
    assert (moved.source.url, moved.source.password_set) == ("rtsp://10.0.0.6/live", False)
    await catalog.update_camera(
        "fields", "door", CameraPatch(source=SourceInput(None, "rtsp://10.0.0.6/live", "admin", SECRET))
    )
    cleared = await catalog.update_camera(
        "fields",
        "door",
        CameraPatch(source=SourceInput(None, "rtsp://10.0.0.6/live", "admin", ""), clear_detection_threshold=True),
    )
    assert not cleared.source.password_set and cleared.detection_threshold is None
    assert (await _reloaded(db)).camera("fields", "door").source.password == ""


async def test_every_bad_field_is_named_in_one_answer(catalog):
    await catalog.create_environment(EnvironmentSpec("bad-fields"))
    spec = CameraSpec("c", fps=0, detection_threshold=1.5, source=SourceInput(SourceKind.HTTP, "ftp://x/y"))
    with pytest.raises(InvalidArgument) as err:
        await catalog.create_camera("bad-fields", spec)
    assert [f for f, _ in err.value.errors] == ["fps", "source.url", "detection_threshold"]
    assert "camera 'c'" in str(err.value)


async def test_route_names_are_not_camera_ids(catalog):
    # GET /environments/{env}/cameras/export is the export: a camera named so could not be read.
    await catalog.create_environment(EnvironmentSpec("reserved"))
    with pytest.raises(InvalidArgument, match="'export' is reserved"):
        await catalog.create_camera("reserved", CameraSpec("export", fps=10, width=320, height=240))


def _csv(*rows: dict) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


async def test_an_import_with_bad_rows_applies_nothing_and_reports_each(catalog, db):
    await catalog.create_environment(EnvironmentSpec("imp-bad", cameras=(CameraSpec("keep", fps=10),)))
    content = _csv(
        {"camera_id": "keep", "fps": "20", "source_kind": "", "source_url": "", "enabled": ""},
        {"camera_id": "new-ok", "fps": "12", "source_kind": "rtsp", "source_url": "rtsp://cam/1", "enabled": "no"},
        {"camera_id": "bad fps", "fps": "fast", "source_kind": "", "source_url": "", "enabled": ""},
        {"camera_id": "bad-src", "fps": "10", "source_kind": "rtsp", "source_url": "http://cam/2", "enabled": "maybe"},
        {"camera_id": "keep", "fps": "5", "source_kind": "", "source_url": "", "enabled": ""},
    )
    result = await camera_io.import_cameras(catalog, "imp-bad", content, FileFormat.CSV)
    assert not result.applied
    assert [(e.row, e.camera_id, e.field) for e in result.errors] == [
        (3, "bad fps", "fps"),
        (3, "bad fps", "camera_id"),
        (4, "bad-src", "enabled"),
        (4, "bad-src", "source_url"),
        (5, "keep", "camera_id"),
    ]
    assert "repeats row 1" in result.errors[-1].message
    env = (await _reloaded(db)).get("imp-bad")
    assert [(c.camera_id, c.fps) for c in env.cameras] == [("keep", 10.0)]
    assert [(c.camera_id, c.fps) for c in catalog.get("imp-bad").cameras] == [("keep", 10.0)]


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (b"", FileFormat.CSV, "no cameras"),
        (b"name,fps\nx,1\n", FileFormat.CSV, "camera_id column is required"),
        (b"camera_id,colour\nx,red\n", FileFormat.CSV, "unknown column 'colour'"),
        (b"{not json", FileFormat.JSON, "not valid JSON"),
        (b'{"cameras": 3}', FileFormat.JSON, "must hold"),
        (b"\xff\xfe", FileFormat.CSV, "not UTF-8"),
    ],
)
async def test_a_bad_file_is_one_error_at_row_zero(catalog, content, fmt, message):
    if "files" not in {e.environment_id for e in catalog.list()}:
        await catalog.create_environment(EnvironmentSpec("files"))
    result = await camera_io.import_cameras(catalog, "files", content, fmt)
    assert not result.applied and len(result.errors) == 1
    assert result.errors[0].row == 0 and message in result.errors[0].message


async def test_dry_run_reports_without_applying_then_the_import_applies(catalog, db, caplog):
    caplog.set_level(logging.DEBUG)
    await catalog.create_environment(EnvironmentSpec("imp-ok", cameras=(CameraSpec("old", fps=10),)))
    await catalog.create_group("imp-ok", CameraGroup("g1", "G1"))
    doc = {
        "cameras": [
            {"camera_id": "old", "enabled": False, "group_id": "g1"},
            {
                "camera_id": "cam-2",
                "fps": 25,
                "source_kind": "rtsp",
                "source_url": f"rtsp://viewer:{SECRET}@cam2.local/stream",
                "homography": {"image_points": SQUARE, "map_points": [[x / 10, y / 10] for x, y in SQUARE]},
                "detection_threshold": 0.3,
            },
        ]
    }
    content = json.dumps(doc).encode()
    dry = await camera_io.import_cameras(catalog, "imp-ok", content, FileFormat.JSON, dry_run=True)
    assert (dry.applied, dry.errors, dry.created, dry.updated) == (False, (), ("cam-2",), ("old",))
    assert [c.camera_id for c in catalog.get("imp-ok").cameras] == ["old"]

    done = await camera_io.import_cameras(catalog, "imp-ok", content, FileFormat.JSON)
    assert done.applied
    env = (await _reloaded(db)).get("imp-ok")
    old, cam2 = env.cameras
    assert (old.enabled, old.group_id, old.fps) == (False, "g1", 10.0)
    source = cam2.source
    assert (source.url, source.username, source.password) == ("rtsp://cam2.local/stream", "viewer", SECRET)
    assert cam2.homography is not None and cam2.detection_threshold == 0.3
    assert not [r for r in caplog.records if SECRET in r.getMessage()]


@pytest.mark.parametrize("fmt", list(FileFormat))
async def test_export_holds_no_password_and_imports_back_unchanged(catalog, db, fmt):
    env_id = f"exp-{fmt}"
    await catalog.create_environment(EnvironmentSpec(env_id))
    await catalog.create_group(env_id, CameraGroup("g", "G"))
    await catalog.create_camera(
        env_id,
        CameraSpec(
            "live",
            fps=12.5,
            width=640,
            height=480,
            group_id="g",
            source=SourceInput(SourceKind.RTSP, "rtsp://cam/live", "admin", SECRET),
            detection_threshold=0.55,
            location='Hall, "east" door, 2nd floor',
            enabled=False,
        ),
    )
    await catalog.create_camera(env_id, CameraSpec("pushed", fps=10, homography=None))
    before = catalog.get(env_id).cameras
    exported = camera_io.export_cameras(catalog.get(env_id), fmt)
    assert SECRET.encode() not in exported
    if fmt == FileFormat.CSV:
        rows = list(csv.DictReader(io.StringIO(exported.decode())))
        assert rows[0]["password_set"] == "true" and "source_password" not in rows[0]
    else:
        assert json.loads(exported)["cameras"][0]["password_set"] is True

    result = await camera_io.import_cameras(catalog, env_id, exported, fmt)
    assert result.applied and result.updated == ("live", "pushed") and not result.created
    assert (await _reloaded(db)).get(env_id).cameras == before  # the password too

    # Into another environment: the same cameras, without the password that was never exported.
    other = f"{env_id}-copy"
    await catalog.create_environment(EnvironmentSpec(other))
    await catalog.create_group(other, CameraGroup("g", "G"))
    assert (await camera_io.import_cameras(catalog, other, exported, fmt)).created == ("live", "pushed")
    live = catalog.camera(other, "live")
    assert live.source.url == "rtsp://cam/live" and not live.source.password_set
    assert live.location == 'Hall, "east" door, 2nd floor' and live.detection_threshold == 0.55


async def test_summary_counts_per_environment_group_kind_and_status(catalog, db):
    await catalog.create_environment(EnvironmentSpec("sum"))
    await catalog.create_group("sum", CameraGroup("north", "North"))
    await catalog.create_group("sum", CameraGroup("empty", "Empty"))
    rtsp = SourceInput(SourceKind.RTSP, "rtsp://cam/1")
    await catalog.create_camera("sum", CameraSpec("a", fps=10, group_id="north", source=rtsp))
    await catalog.create_camera("sum", CameraSpec("b", fps=10, group_id="north", enabled=False))
    await catalog.create_camera("sum", CameraSpec("c", fps=10))
    # The summary counts each camera's latest health row: a is online again, b degraded, c never checked.
    now = dt.datetime.now(dt.UTC)
    for camera_id, age_s, status in (("a", 60, "offline"), ("a", 0, "online"), ("b", 30, "degraded")):
        check = HealthCheck("sum", camera_id, now - dt.timedelta(seconds=age_s), status, None, 10.0, 320, 240, "")
        await CameraHealthStore(db).insert(check)

    summary = await catalog.summary()
    [env] = [e for e in summary.environments if e.environment_id == "sum"]
    assert (env.counts.total, env.counts.enabled, env.counts.disabled) == (3, 2, 1)
    assert env.counts.by_source == {SourceKind.FILE: 0, SourceKind.RTSP: 1, SourceKind.HTTP: 0, SourceKind.PUSH: 2}
    groups = {g.group_id: g.counts.total for g in env.groups}
    assert groups == {"north": 2, "empty": 0, "": 1}
    assert env.counts.by_status == {"online": 1, "offline": 0, "degraded": 1, "unknown": 1}
    assert summary.counts.total == sum(e.counts.total for e in summary.environments)
