"""One recorded environment tracked on one replica, and on two that split its cameras.

Replica A is the in-process ``live_service`` (every camera of its tasks runs there); replica S
is a second in-process service on the same PostgreSQL, Redis and Triton with
``SPOTON_MAX_CAMERAS_PER_REPLICA=1``, so it runs the first camera and offers the others, which A
takes. The global ids, the stored track points and every export must be the same either way.

Two scenes: the synthetic demo hall (three cameras, overlapping views and a handover) and real
footage, PETS09-S2L1 (``../shared/real``) cut into two cameras that see the same square 30
frames apart, so people reappear in the other camera later (a Re-ID handover on real people).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from spoton_inference.app import InferenceApp
from spoton_inference.domain.events import TaskState
from spoton_inference.embedded.ports import pick_free_ports
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate
from spoton_inference.services.tasks import TaskAction
from spoton_inference.storage.camera_shards import claim_key
from spoton_inference.storage.task_store import TaskStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
FINAL = {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}


REAL = Path(__file__).resolve().parents[3] / "shared" / "real" / "pets09-s2l1"
REAL_FRAMES = 120  # per camera; the second camera starts REAL_DELAY frames later
REAL_DELAY = 30


def _synthetic(directory: Path) -> Path:
    """Three cameras (two overlapping views and a handover), six people, two batches of 40 frames."""
    config = dataclasses.replace(demo_config(seed=3), frames_per_batch=40, n_people=6)
    return generate(config, directory / "site")


def _real(directory: Path) -> Path:
    """PETS09-S2L1's camera as two cameras: frames 0.. and REAL_DELAY.. of it, same homography."""
    import cv2

    doc = json.loads((REAL / "environment.json").read_text())
    (camera,) = doc["cameras"]
    capture = cv2.VideoCapture(str(REAL / "cameras" / "c01" / "sub_video_01.mp4"))
    frames = [capture.read()[1] for _ in range(REAL_FRAMES + REAL_DELAY)]
    capture.release()
    cameras = []
    for cam_id, first in (("c01", 0), ("c02", REAL_DELAY)):
        path = directory / "site" / "cameras" / cam_id / "sub_video_01.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        height, width = frames[0].shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), camera["fps"], (width, height))
        for frame in frames[first : first + REAL_FRAMES]:
            writer.write(frame)
        writer.release()
        cameras.append({**camera, "id": cam_id, "name": f"PETS09 view 1, from frame {first}"})
    site = directory / "site"
    (site / "environment.json").write_text(json.dumps({**doc, "id": "pets09-split", "cameras": cameras}))
    return site


@pytest.fixture(scope="module", params=["synthetic", "pets09"])
def scene(request, make_data_dir) -> Path:
    return (_synthetic if request.param == "synthetic" else _real)(make_data_dir(f"shards-{request.param}"))


@pytest_asyncio.fixture(scope="module")
async def splitter(live_service) -> AsyncIterator[InferenceApp]:
    (port,) = pick_free_ports(1)
    settings = dataclasses.replace(
        live_service.settings, grpc_port=port, replica_id="replica-s", max_cameras_per_replica=1
    )
    app = await InferenceApp.create(settings)
    try:
        await app.warm_up()
        yield app
    finally:
        await app.close()


async def _run(app: InferenceApp, environment_id: str) -> str:
    task = await app.tasks.start(environment_id, [], allow_concurrent=True)
    async with asyncio.timeout(300):
        while True:  # the record in PostgreSQL, polled as a client would
            record = await app.tasks.get(task.task_id)
            if record.state in FINAL:
                break
            await asyncio.sleep(0.2)
    assert record.state == TaskState.COMPLETED, record.error
    return task.task_id


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while True:  # the worker's own count: polled, it has no event to wait on
            if condition():
                return
            await asyncio.sleep(0.05)


def _exports(app: InferenceApp, task_id: str) -> dict[str, list[str]]:
    directory = app.settings.media_root / "tasks" / task_id / "exports"
    out = {}
    for path in sorted(directory.iterdir()):
        if path.name == "tracking.json":  # refinement's wall times differ; the calibration must not
            out[path.name] = [json.dumps(json.loads(path.read_text())["reid_calibration"], sort_keys=True)]
        else:
            out[path.name] = path.read_text().splitlines()
    return out


async def test_two_replicas_that_split_the_cameras_give_the_global_ids_of_one(live_service, splitter, scene):
    a = live_service.app
    env_id = (await a.catalog.register_directory(str(scene))).environment_id
    await splitter.catalog.reload()
    taken = a.shard_worker.shards_run
    cameras = len(a.catalog.get(env_id).cameras)

    one = await _run(a, env_id)
    two = await _run(splitter, env_id)
    assert a.shard_worker.shards_run == taken + cameras - 1  # all but the first camera ran on A

    store = TaskStore(a.db)
    rows_one = [tuple(r) for r in await store.task_track_points(one)]
    rows_two = [tuple(r) for r in await store.task_track_points(two)]
    assert len(rows_one) > 200 and len({r[3] for r in rows_one}) >= 4  # people tracked, several ids
    assert rows_two == rows_one  # camera, frame, local id, global id, box, score, map point: row for row

    exports_one, exports_two = _exports(a, one), _exports(splitter, two)
    assert exports_two.keys() == exports_one.keys() and len(exports_one) > 3
    for name, lines in exports_one.items():
        assert exports_two[name] == lines, name


async def test_cancelling_a_split_task_stops_its_cameras_on_the_other_replica(live_service, splitter):
    a = live_service.app
    directory = live_service.make_environment("shards-cancel")  # two cameras: c2 goes to A
    env_id = (await a.catalog.register_directory(str(directory))).environment_id
    await splitter.catalog.reload()
    running = a.shard_worker.running
    task = await splitter.tasks.start(env_id, [], allow_concurrent=True)
    await splitter.tasks.control(task.task_id, TaskAction.PAUSE)
    await _until(lambda: a.shard_worker.running > running)
    await splitter.tasks.control(task.task_id, TaskAction.CANCEL)
    await _until(lambda: a.shard_worker.running == running)
    record = await splitter.tasks.get(task.task_id)
    assert record.state == TaskState.CANCELLED and record.frames_processed < record.total_frames
    assert not await a.events.client.exists(claim_key(task.task_id, 1))
