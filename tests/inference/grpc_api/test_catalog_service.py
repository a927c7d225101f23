"""CatalogService CRUD over gRPC on the real service: validation, status codes, persistence."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from spoton.v1 import catalog_pb2, common_pb2, tasks_pb2
from spoton_inference.files import environment_dir
from spoton_inference.services.catalog import Catalog
from spoton_inference.storage.camera_health_store import CameraHealthStore
from spoton_inference.storage.catalog_store import CatalogStore
from spoton_inference.storage.environment_store import EnvironmentStore

SQUARE = [(0, 0), (640, 0), (640, 480), (0, 480), (320, 240)]
TRUTH = np.array([[0.01, 0.0, 1.0], [0.0, 0.02, 2.0], [0.0, 0.0, 1.0]])


def _project(points: list[tuple[float, float]], matrix: np.ndarray = TRUTH) -> list[tuple[float, float]]:
    h = np.hstack([np.asarray(points, float), np.ones((len(points), 1))]) @ matrix.T
    return [tuple(p) for p in (h[:, :2] / h[:, 2:]).tolist()]


def _homography(
    image: list[tuple[float, float]] = SQUARE, world: list[tuple[float, float]] | None = None, matrix=()
) -> catalog_pb2.Homography:
    world = _project(image) if world is None else world
    return catalog_pb2.Homography(
        image_points=[common_pb2.MapPoint(x=u, y=v) for u, v in image],
        map_points=[common_pb2.MapPoint(x=x, y=y) for x, y in world],
        matrix=list(matrix),
    )


def _camera(camera_id: str = "door", **fields) -> catalog_pb2.Camera:
    fields.setdefault("fps", 15.0)
    return catalog_pb2.Camera(camera_id=camera_id, **fields)


async def _create(catalog, environment_id: str, *cameras: catalog_pb2.Camera, **fields) -> catalog_pb2.Environment:
    env = catalog_pb2.Environment(environment_id=environment_id, cameras=list(cameras), **fields)
    return await catalog.CreateEnvironment(catalog_pb2.CreateEnvironmentRequest(environment=env))


async def test_create_fits_the_homography_and_reports_its_error(catalog):
    env = await _create(
        catalog,
        "crud-fit",
        _camera("door", name="Front door", width=640, height=480, homography=_homography()),
        name="Lobby",
        map=catalog_pb2.FloorMap(metres_per_pixel=0.05),
    )
    assert (env.environment_id, env.name, env.map.metres_per_pixel) == ("crud-fit", "Lobby", 0.05)
    [cam] = env.cameras
    assert (cam.camera_id, cam.name, cam.fps, cam.width, cam.height) == ("door", "Front door", 15.0, 640, 480)
    assert np.allclose(np.reshape(cam.homography.matrix, (3, 3)), TRUTH, atol=1e-9)
    assert cam.homography.reprojection_error_m < 1e-6
    assert len(cam.homography.image_points) == 5
    assert await catalog.GetEnvironment(catalog_pb2.GetEnvironmentRequest(environment_id="crud-fit")) == env
    listed = await catalog.ListEnvironments(catalog_pb2.ListEnvironmentsRequest())
    assert "crud-fit" in {e.environment_id for e in listed.environments}


async def test_a_matrix_is_taken_as_given_and_measured_against_points(catalog):
    off = TRUTH.copy()
    off[0, 2] += 0.5  # every mapped point lands 0.5 m off in x
    env = await _create(
        catalog,
        "crud-matrix",
        _camera("plain", homography=catalog_pb2.Homography(matrix=(2 * TRUTH).reshape(-1).tolist())),
        _camera("measured", homography=_homography(matrix=off.reshape(-1).tolist())),
    )
    plain, measured = env.cameras
    assert np.allclose(plain.homography.matrix, TRUTH.reshape(-1))  # normalised to h33 = 1
    assert plain.homography.reprojection_error_m == 0.0 and not plain.homography.image_points
    assert measured.homography.reprojection_error_m == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("homography", "message"),
    [
        (_homography(SQUARE[:3]), "at least 4 point pairs, got 3"),
        (_homography([(0, 0), (1, 1), (2, 2), (3, 3)], [(0, 0), (1, 0), (1, 1), (0, 1)]), "collinear"),
        (_homography([(0, 0), (10, 0), (20, 0), (5, 9)]), "three of the four"),
        (_homography(SQUARE, _project(SQUARE)[:4]), "got 5 and 4 points"),
        (_homography(SQUARE[:4], [(0, 0), (1, 0), (0, 1), (1, 1)]), "beyond the horizon"),
        (catalog_pb2.Homography(matrix=[1, 0, 0, 0, 1, 0, 0, 0]), "9 values"),
        (catalog_pb2.Homography(matrix=[1, 0, 0, 2, 0, 0, 0, 0, 1]), "singular"),
        (catalog_pb2.Homography(), "homography is empty"),
    ],
)
async def test_degenerate_homographies_are_refused_with_the_reason(catalog, homography, message, rpc_error):
    code, details = await rpc_error(_create(catalog, "crud-bad", _camera("cam-7", homography=homography)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in details and "cam-7" in details
    assert (await rpc_error(catalog.GetEnvironment(catalog_pb2.GetEnvironmentRequest(environment_id="crud-bad"))))[
        0
    ] == grpc.StatusCode.NOT_FOUND  # nothing half-created


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (catalog_pb2.Environment(environment_id=""), "environment_id must be"),
        (catalog_pb2.Environment(environment_id="has space"), "environment_id must be"),
        (catalog_pb2.Environment(environment_id="ok", cameras=[_camera("a"), _camera("a")]), "unique"),
        (catalog_pb2.Environment(environment_id="ok", cameras=[_camera("a", fps=0)]), "fps must be"),
        (catalog_pb2.Environment(environment_id="ok", cameras=[_camera("a", width=-1)]), "width must be"),
        (catalog_pb2.Environment(environment_id="ok", map=catalog_pb2.FloorMap(metres_per_pixel=-1)), "metres_per"),
    ],
)
async def test_bad_environments_are_invalid_arguments(catalog, environment, message, rpc_error):
    code, details = await rpc_error(
        catalog.CreateEnvironment(catalog_pb2.CreateEnvironmentRequest(environment=environment))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message in details


async def test_creating_twice_is_already_exists(catalog, rpc_error):
    await _create(catalog, "crud-twice")
    code, details = await rpc_error(_create(catalog, "crud-twice"))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "crud-twice" in details


async def test_update_environment_changes_only_the_fields_set(catalog, rpc_error):
    await _create(catalog, "crud-update", _camera("a"), name="Old", map=catalog_pb2.FloorMap(metres_per_pixel=0.1))
    env = await catalog.UpdateEnvironment(
        catalog_pb2.UpdateEnvironmentRequest(environment_id="crud-update", name="New")
    )
    assert (env.name, env.map.metres_per_pixel, len(env.cameras)) == ("New", 0.1, 1)
    env = await catalog.UpdateEnvironment(
        catalog_pb2.UpdateEnvironmentRequest(environment_id="crud-update", metres_per_pixel=0.0)
    )
    assert (env.name, env.map.metres_per_pixel) == ("New", 0.0)
    blank = catalog_pb2.UpdateEnvironmentRequest(environment_id="crud-update", name=" ")
    assert (await rpc_error(catalog.UpdateEnvironment(blank)))[0] == grpc.StatusCode.INVALID_ARGUMENT
    missing = catalog_pb2.UpdateEnvironmentRequest(environment_id="nowhere", name="x")
    assert (await rpc_error(catalog.UpdateEnvironment(missing)))[0] == grpc.StatusCode.NOT_FOUND


async def test_camera_lifecycle(catalog, rpc_error):
    await _create(catalog, "crud-cams", _camera("a"))
    created = await catalog.CreateCamera(
        catalog_pb2.CreateCameraRequest(environment_id="crud-cams", camera=_camera("b", homography=_homography()))
    )
    assert created.homography.reprojection_error_m < 1e-6
    get = catalog_pb2.GetCameraRequest(environment_id="crud-cams", camera_id="b")
    assert await catalog.GetCamera(get) == created
    duplicate = catalog_pb2.CreateCameraRequest(environment_id="crud-cams", camera=_camera("b"))
    assert (await rpc_error(catalog.CreateCamera(duplicate)))[0] == grpc.StatusCode.ALREADY_EXISTS

    updated = await catalog.UpdateCamera(
        catalog_pb2.UpdateCameraRequest(environment_id="crud-cams", camera_id="b", name="Back", fps=30, width=800)
    )
    assert (updated.name, updated.fps, updated.width) == ("Back", 30.0, 800)
    assert updated.homography == created.homography  # untouched
    cleared = await catalog.UpdateCamera(
        catalog_pb2.UpdateCameraRequest(environment_id="crud-cams", camera_id="b", clear_homography=True)
    )
    assert not cleared.HasField("homography")
    bad = catalog_pb2.UpdateCameraRequest(environment_id="crud-cams", camera_id="b", homography=_homography(SQUARE[:2]))
    code, details = await rpc_error(catalog.UpdateCamera(bad))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "camera 'b'" in details

    await catalog.DeleteCamera(catalog_pb2.DeleteCameraRequest(environment_id="crud-cams", camera_id="b"))
    assert (await rpc_error(catalog.GetCamera(get)))[0] == grpc.StatusCode.NOT_FOUND
    cams = await catalog.ListCameras(catalog_pb2.ListCamerasRequest(environment_id="crud-cams"))
    assert [c.camera_id for c in cams.cameras] == ["a"]
    gone = catalog_pb2.DeleteCameraRequest(environment_id="crud-cams", camera_id="b")
    assert (await rpc_error(catalog.DeleteCamera(gone)))[0] == grpc.StatusCode.NOT_FOUND


async def test_changes_persist_in_postgres(catalog, live_service, rpc_error):
    await _create(catalog, "crud-persist", _camera("a", homography=_homography()))
    await catalog.UpdateCamera(catalog_pb2.UpdateCameraRequest(environment_id="crud-persist", camera_id="a", fps=12))
    await _create(catalog, "crud-deleted")
    await catalog.DeleteEnvironment(catalog_pb2.DeleteEnvironmentRequest(environment_id="crud-deleted"))

    reloaded = Catalog(
        EnvironmentStore(live_service.app.db),
        CatalogStore(live_service.app.db),
        CameraHealthStore(live_service.app.db),
        environment_dir,
    )  # what a restarted service would see
    await reloaded.load()
    cam = reloaded.camera("crud-persist", "a")
    assert cam.fps == 12 and cam.homography is not None and cam.homography.reprojection_error() < 1e-6
    assert "crud-deleted" not in {e.environment_id for e in reloaded.list()}
    gone = catalog_pb2.DeleteEnvironmentRequest(environment_id="crud-deleted")
    assert (await rpc_error(catalog.DeleteEnvironment(gone)))[0] == grpc.StatusCode.NOT_FOUND


async def test_a_new_camera_finds_its_sub_videos_in_the_environment_directory(catalog, register):
    await register("crud-dir")
    await catalog.DeleteCamera(catalog_pb2.DeleteCameraRequest(environment_id="crud-dir", camera_id="c2"))
    cam = await catalog.CreateCamera(
        catalog_pb2.CreateCameraRequest(environment_id="crud-dir", camera=catalog_pb2.Camera(camera_id="c2"))
    )
    assert list(cam.sub_videos) == ["sub_video_01.mp4", "sub_video_02.mp4"]
    assert (cam.fps, cam.width, cam.height, list(cam.sub_video_frames)) == (10.0, 160, 120, [15, 15])


async def test_what_an_unfinished_task_uses_cannot_be_deleted(catalog, tasks, register, rpc_error):
    await register("crud-busy")
    task = (await tasks.StartTask(tasks_pb2.StartTaskRequest(environment_id="crud-busy", camera_ids=["c1"]))).task
    control = tasks_pb2.ControlTaskRequest(task_id=task.task_id, action=tasks_pb2.TASK_ACTION_PAUSE)
    await tasks.ControlTask(control)
    try:
        code, details = await rpc_error(
            catalog.DeleteEnvironment(catalog_pb2.DeleteEnvironmentRequest(environment_id="crud-busy"))
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION and task.task_id in details
        used = catalog_pb2.DeleteCameraRequest(environment_id="crud-busy", camera_id="c1")
        assert (await rpc_error(catalog.DeleteCamera(used)))[0] == grpc.StatusCode.FAILED_PRECONDITION
        # The task does not use c2.
        await catalog.DeleteCamera(catalog_pb2.DeleteCameraRequest(environment_id="crud-busy", camera_id="c2"))
    finally:
        control.action = tasks_pb2.TASK_ACTION_CANCEL
        await tasks.ControlTask(control)
    await catalog.DeleteEnvironment(catalog_pb2.DeleteEnvironmentRequest(environment_id="crud-busy"))


async def test_the_floor_plan_image_is_published_for_browsers(catalog, live_service):
    import json

    import cv2

    path = live_service.make_environment("crud-map")
    plan = np.zeros((90, 140, 3), np.uint8)
    cv2.imwrite(str(path / "plan.png"), plan)
    doc = json.loads((path / "environment.json").read_text())
    doc["map"] = {"image": "plan.png", "metres_per_pixel": 0.1}
    (path / "environment.json").write_text(json.dumps(doc))

    request = catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=str(path))
    env = (await catalog.RegisterEnvironmentFromDirectory(request)).environment
    prefix = live_service.settings.media_url_prefix
    assert env.map.image_url == f"{prefix}/environments/crud-map/floor_map.png"
    assert env.map.metres_per_pixel == pytest.approx(0.1)
    published = live_service.settings.media_root / env.map.image_url.removeprefix(prefix + "/")
    assert published.read_bytes() == (path / "plan.png").read_bytes()
    # A service restarted on the same database publishes it again from the record.
    published.unlink()
    reloaded = Catalog(
        EnvironmentStore(live_service.app.db),
        CatalogStore(live_service.app.db),
        CameraHealthStore(live_service.app.db),
        environment_dir,
        media=live_service.settings.media,
    )
    await reloaded.load()
    assert reloaded.get("crud-map").floor_map.image_url == env.map.image_url and published.is_file()
    await catalog.DeleteEnvironment(catalog_pb2.DeleteEnvironmentRequest(environment_id="crud-map"))
