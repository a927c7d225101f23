"""CameraRegistryService and the camera registry fields of CatalogService on the real service:
status codes, credentials never answered nor logged, import, export and the summary."""

from __future__ import annotations

import json
import logging

import grpc
import pytest_asyncio

from spoton.v1 import cameras_pb2, cameras_pb2_grpc, catalog_pb2

SECRET = "gRPC-s3cret-0451"
RTSP = catalog_pb2.CAMERA_SOURCE_KIND_RTSP
CSV = cameras_pb2.CAMERA_FILE_FORMAT_CSV
JSON = cameras_pb2.CAMERA_FILE_FORMAT_JSON


@pytest_asyncio.fixture(scope="module")
async def cameras(channel) -> cameras_pb2_grpc.CameraRegistryServiceStub:
    return cameras_pb2_grpc.CameraRegistryServiceStub(channel)


async def _environment(catalog, environment_id: str) -> None:
    env = catalog_pb2.Environment(environment_id=environment_id)
    await catalog.CreateEnvironment(catalog_pb2.CreateEnvironmentRequest(environment=env))


def _no_secret_logged(caplog) -> None:
    leaked = [r for r in caplog.records if SECRET in r.getMessage() or SECRET in str(r.args)]
    assert not leaked


async def test_camera_fields_round_trip_with_the_password_masked(catalog, cameras, caplog, rpc_error):
    caplog.set_level(logging.DEBUG)
    await _environment(catalog, "reg-fields")
    group = cameras_pb2.CameraGroup(environment_id="reg-fields", group_id="lobby", name="Lobby")
    await cameras.CreateCameraGroup(cameras_pb2.CreateCameraGroupRequest(group=group))
    camera = catalog_pb2.Camera(
        camera_id="door",
        fps=15,
        group_id="lobby",
        source=catalog_pb2.CameraSource(kind=RTSP, url=f"rtsp://admin:{SECRET}@10.1.2.3:554/live"),
        detection_threshold=0.35,
        location="Lobby, north wall",
        enabled=False,
    )
    created = await catalog.CreateCamera(catalog_pb2.CreateCameraRequest(environment_id="reg-fields", camera=camera))
    assert SECRET.encode() not in created.SerializeToString()
    assert not created.source.HasField("password")
    assert (created.source.url, created.source.username, created.source.password_set) == (
        "rtsp://10.1.2.3:554/live",
        "admin",
        True,
    )
    assert created.source.masked_url == "rtsp://admin:****@10.1.2.3:554/live"
    assert (created.group_id, created.detection_threshold, created.location, created.enabled) == (
        "lobby",
        0.35,
        "Lobby, north wall",
        False,
    )
    get = catalog_pb2.GetCameraRequest(environment_id="reg-fields", camera_id="door")
    assert await catalog.GetCamera(get) == created

    # An update without a password keeps it on the same host (another host drops it); "" removes it.
    update = catalog_pb2.UpdateCameraRequest(
        environment_id="reg-fields",
        camera_id="door",
        source=catalog_pb2.CameraSource(url="rtsp://10.1.2.3:554/main", username="admin"),
        enabled=True,
        clear_detection_threshold=True,
    )
    updated = await catalog.UpdateCamera(update)
    assert updated.source.password_set and updated.source.kind == RTSP and updated.enabled
    assert not updated.HasField("detection_threshold")
    update.source.password = ""
    assert not (await catalog.UpdateCamera(update)).source.password_set
    _no_secret_logged(caplog)

    listed = await catalog.ListCameras(catalog_pb2.ListCamerasRequest(environment_id="reg-fields", group_id="lobby"))
    assert [c.camera_id for c in listed.cameras] == ["door"]
    disabled = catalog_pb2.ListCamerasRequest(environment_id="reg-fields", enabled=False)
    assert not (await catalog.ListCameras(disabled)).cameras
    unknown = catalog_pb2.ListCamerasRequest(environment_id="reg-fields", group_id="nowhere")
    assert (await rpc_error(catalog.ListCameras(unknown)))[0] == grpc.StatusCode.NOT_FOUND


async def test_bad_camera_fields_are_invalid_arguments_naming_them(catalog, rpc_error):
    await _environment(catalog, "reg-bad")
    camera = catalog_pb2.Camera(
        camera_id="x",
        fps=10,
        group_id="nope",
        detection_threshold=2,
        source=catalog_pb2.CameraSource(kind=RTSP, url=f"http://u:{SECRET}@cam/x"),
    )
    code, details = await rpc_error(
        catalog.CreateCamera(catalog_pb2.CreateCameraRequest(environment_id="reg-bad", camera=camera))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "group_id 'nope'" in details and "source.url" in details and "detection_threshold" in details
    assert SECRET not in details


async def test_group_lifecycle_and_status_codes(catalog, cameras, rpc_error):
    await _environment(catalog, "reg-groups")
    request = cameras_pb2.CreateCameraGroupRequest(
        group=cameras_pb2.CameraGroup(environment_id="reg-groups", group_id="g1", description="East wing")
    )
    created = await cameras.CreateCameraGroup(request)
    assert (created.name, created.description, list(created.camera_ids)) == ("g1", "East wing", [])
    assert (await rpc_error(cameras.CreateCameraGroup(request)))[0] == grpc.StatusCode.ALREADY_EXISTS
    await catalog.CreateCamera(
        catalog_pb2.CreateCameraRequest(
            environment_id="reg-groups", camera=catalog_pb2.Camera(camera_id="c", fps=5, group_id="g1")
        )
    )
    updated = await cameras.UpdateCameraGroup(
        cameras_pb2.UpdateCameraGroupRequest(environment_id="reg-groups", group_id="g1", name="East")
    )
    assert (updated.name, updated.description, list(updated.camera_ids)) == ("East", "East wing", ["c"])
    listed = await cameras.ListCameraGroups(cameras_pb2.ListCameraGroupsRequest(environment_id="reg-groups"))
    assert [g.group_id for g in listed.groups] == ["g1"]

    await cameras.DeleteCameraGroup(cameras_pb2.DeleteCameraGroupRequest(environment_id="reg-groups", group_id="g1"))
    get = cameras_pb2.GetCameraGroupRequest(environment_id="reg-groups", group_id="g1")
    assert (await rpc_error(cameras.GetCameraGroup(get)))[0] == grpc.StatusCode.NOT_FOUND
    camera = await catalog.GetCamera(catalog_pb2.GetCameraRequest(environment_id="reg-groups", camera_id="c"))
    assert camera.group_id == ""
    bad = cameras_pb2.CreateCameraGroupRequest(group=cameras_pb2.CameraGroup(environment_id="reg-groups"))
    assert (await rpc_error(cameras.CreateCameraGroup(bad)))[0] == grpc.StatusCode.INVALID_ARGUMENT
    elsewhere = cameras_pb2.ListCameraGroupsRequest(environment_id="nowhere")
    assert (await rpc_error(cameras.ListCameraGroups(elsewhere)))[0] == grpc.StatusCode.NOT_FOUND


async def test_import_reports_every_bad_row_and_applies_nothing(catalog, cameras, caplog, rpc_error):
    caplog.set_level(logging.DEBUG)
    await _environment(catalog, "reg-import")
    content = (
        "camera_id,fps,source_kind,source_url,detection_threshold\n"
        f"good,10,rtsp,rtsp://op:{SECRET}@cam-1/live,0.5\n"
        "bad,-1,rtsp,,\n"
        "worse,ten,push,,7\n"
    ).encode()
    request = cameras_pb2.ImportCamerasRequest(environment_id="reg-import", content=content, format=CSV)
    report = await cameras.ImportCameras(request)
    assert not report.applied
    assert [(e.row, e.camera_id, e.field) for e in report.errors] == [
        (2, "bad", "fps"),
        (2, "bad", "source_url"),
        (3, "worse", "fps"),
        (3, "worse", "detection_threshold"),
    ]
    listed = await catalog.ListCameras(catalog_pb2.ListCamerasRequest(environment_id="reg-import"))
    assert not listed.cameras

    good = cameras_pb2.ImportCamerasRequest(
        environment_id="reg-import", content=content.split(b"\nbad")[0], format=CSV, dry_run=True
    )
    dry = await cameras.ImportCameras(good)
    assert (dry.applied, list(dry.created_camera_ids), list(dry.errors)) == (False, ["good"], [])
    good.dry_run = False
    assert (await cameras.ImportCameras(good)).applied
    camera = await catalog.GetCamera(catalog_pb2.GetCameraRequest(environment_id="reg-import", camera_id="good"))
    assert camera.source.password_set and SECRET.encode() not in camera.SerializeToString()
    _no_secret_logged(caplog)

    no_format = cameras_pb2.ImportCamerasRequest(environment_id="reg-import", content=content)
    assert (await rpc_error(cameras.ImportCameras(no_format)))[0] == grpc.StatusCode.INVALID_ARGUMENT
    elsewhere = cameras_pb2.ImportCamerasRequest(environment_id="nowhere", content=content, format=CSV)
    assert (await rpc_error(cameras.ImportCameras(elsewhere)))[0] == grpc.StatusCode.NOT_FOUND


async def test_export_never_holds_the_password_and_imports_back(catalog, cameras):
    await _environment(catalog, "reg-export")
    source = catalog_pb2.CameraSource(kind=RTSP, url="rtsp://cam/1", username="admin", password=SECRET)
    camera = catalog_pb2.Camera(camera_id="a", fps=10, source=source, location="Gate")
    await catalog.CreateCamera(catalog_pb2.CreateCameraRequest(environment_id="reg-export", camera=camera))
    for file_format, media_type in ((CSV, "text/csv"), (JSON, "application/json")):
        exported = await cameras.ExportCameras(
            cameras_pb2.ExportCamerasRequest(environment_id="reg-export", format=file_format)
        )
        assert exported.media_type == media_type and exported.filename.startswith("reg-export-cameras.")
        assert SECRET.encode() not in exported.content
        back = await cameras.ImportCameras(
            cameras_pb2.ImportCamerasRequest(environment_id="reg-export", content=exported.content, format=file_format)
        )
        assert back.applied and list(back.updated_camera_ids) == ["a"]
    doc = json.loads(exported.content)
    assert doc["cameras"][0]["password_set"] is True and doc["cameras"][0]["location"] == "Gate"
    again = await catalog.GetCamera(catalog_pb2.GetCameraRequest(environment_id="reg-export", camera_id="a"))
    assert again.source.password_set  # kept through the round trip


async def test_summary_counts(catalog, cameras):
    await _environment(catalog, "reg-summary")
    for camera in (
        catalog_pb2.Camera(camera_id="a", fps=5, source=catalog_pb2.CameraSource(kind=RTSP, url="rtsp://x/1")),
        catalog_pb2.Camera(camera_id="b", fps=5, enabled=False),
    ):
        await catalog.CreateCamera(catalog_pb2.CreateCameraRequest(environment_id="reg-summary", camera=camera))
    summary = await cameras.GetCameraSummary(cameras_pb2.GetCameraSummaryRequest())
    [env] = [e for e in summary.environments if e.environment_id == "reg-summary"]
    c = env.counts
    assert (c.total, c.enabled, c.disabled, c.source_rtsp, c.source_push, c.unknown) == (2, 1, 1, 1, 1, 2)
    assert [(g.group_id, g.counts.total) for g in env.groups] == [("", 2)]
    assert summary.counts.total == sum(e.counts.total for e in summary.environments)
