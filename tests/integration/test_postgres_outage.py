"""PostgreSQL killed (SIGKILL) in the middle of a real task and started again: tracking goes on,
the task completes, and every track point it produced is in the table exactly once.

The inference service runs in this process on the embedded Triton, PostgreSQL and Redis,
with a small memory bound so that the outage also spills batches to the local journal.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import signal
import time
import uuid
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from spoton_inference.app import InferenceApp, wait_for_triton
from spoton_inference.domain.events import StatusUpdate, TaskState, TrackingUpdate
from spoton_inference.embedded.restarts import RestartPolicy
from spoton_inference.embedded.stack import EmbeddedStack
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate
from spoton_inference.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

KILL_AT_FRAME = 15
RESTART_AT_FRAME = 35


@pytest.fixture(scope="module")
def env_dir(tmp_path_factory) -> Path:
    config = dataclasses.replace(demo_config(seed=5), frames_per_batch=50, n_people=6)
    return generate(config, tmp_path_factory.mktemp("env") / "site")


@pytest_asyncio.fixture(scope="module")
async def service(make_data_dir):
    # Refined in windows of 10 frames, so track points keep coming while PostgreSQL is down.
    settings = Settings(
        data_dir=make_data_dir("postgres-outage"), writer_batch_size=20, writer_buffer_rows=60, refine_window_frames=10
    )
    # The test starts PostgreSQL again itself at RESTART_AT_FRAME: the supervisor's restart
    # would come later than the whole test.
    async with EmbeddedStack(settings, restart=RestartPolicy(backoff_initial_s=3600)) as stack:
        app = await InferenceApp.create(stack.settings)
        try:
            await wait_for_triton(app.models, 300)
            await app.warm_up()
            yield stack, app
        finally:
            await app.close()


async def test_a_task_outlives_a_killed_postgres_and_every_track_point_lands_once(service, env_dir):
    stack, app = service
    env = await app.catalog.register_directory(str(env_dir))
    record = await app.tasks.start(env.environment_id, [])
    frames, final, during_outage = 0, None, None
    async for event in app.tasks.watch(record.task_id, 0):
        if isinstance(event.payload, TrackingUpdate):
            frames += 1
            if frames == KILL_AT_FRAME:
                os.kill(stack.postgres.pid, signal.SIGKILL)
            elif frames == RESTART_AT_FRAME:
                postgres = {c.name: c for c in (await app.health()).components}["postgres"]
                during_outage = (postgres, app.writer.available, app.writer.journaled)
                await stack.postgres.start()
        elif isinstance(event.payload, StatusUpdate) and event.payload.state.is_final:
            final = event.payload
    assert frames == record.total_frames > RESTART_AT_FRAME
    assert final is not None and final.state is TaskState.COMPLETED, final

    # While PostgreSQL was down tracking went on, health said so, and points were journaled.
    postgres, available, journaled = during_outage
    assert postgres.status == "degraded" and "unreachable" in postgres.detail, postgres
    assert not available and journaled > 0

    async with asyncio.timeout(60):
        await app.writer.drain()
    stored = await _stored_task(app, record.task_id)
    assert stored.state is TaskState.COMPLETED and stored.frames_processed == record.total_frames

    exported = _exported_points(Path(app.settings.media_root) / "tasks" / record.task_id / "exports", env)
    async with app.db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT camera_id, global_frame_index, global_id, local_id FROM track_points WHERE task_id = $1",
            uuid.UUID(record.task_id),
        )
    in_table = collections.Counter(
        (r["camera_id"], r["global_frame_index"], r["global_id"], r["local_id"]) for r in rows
    )
    assert sum(exported.values()) > 0
    assert in_table == exported  # every exported point once: none lost, none twice
    c = app.writer.counters
    assert c.spilled > 0 and c.replayed > 0 and c.lost == 0


async def _stored_task(app: InferenceApp, task_id: str):
    """The task record once its final state (retried in the background) has reached PostgreSQL."""
    deadline = time.monotonic() + 60
    while not (stored := await app.tasks.get(task_id)).state.is_final:
        assert time.monotonic() < deadline, f"task record still {stored.state}"
        await asyncio.sleep(0.1)
    return stored


def _exported_points(exports: Path, env) -> collections.Counter:
    """(camera, global frame index, global id, local id) of every line of the MOT exports."""
    points: collections.Counter = collections.Counter()
    for camera in env.cameras:
        global_lines = (exports / f"{camera.camera_id}.global.txt").read_text().splitlines()
        local_lines = (exports / f"{camera.camera_id}.local.txt").read_text().splitlines()
        assert len(global_lines) == len(local_lines)
        for g, loc in zip(global_lines, local_lines, strict=True):
            frame, gid = (int(v) for v in g.split(",")[:2])
            points[(camera.camera_id, frame - 1, gid, int(loc.split(",")[1]))] += 1
    return points


def _postgres_processes(postmaster: int) -> list[int]:
    """The postmaster and its backends: freezing only the postmaster leaves open connections answering."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


async def test_rpcs_that_need_postgres_answer_unavailable_promptly_while_it_is_frozen_or_down(service):
    from spoton_inference.domain.errors import Unavailable
    from spoton_inference.grpc_api.errors import status_for

    stack, app = service
    task_id = str(uuid.uuid4())
    assert await _get_or_none(app, task_id) is None  # answering before the outage
    frozen = _postgres_processes(stack.postgres.pid)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable) as refused:
            await app.tasks.get(task_id)
        frozen_s = time.monotonic() - started
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    # Killed last: bringing it back is the supervisor's work (tests/inference/embedded), so
    # this test stays the module's last.
    for pid in _postgres_processes(stack.postgres.pid):  # the whole server, as a crash of its machine
        os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(Unavailable) as down:
        await app.tasks.get(task_id)
    down_s = time.monotonic() - started
    print(f"GetTask answered UNAVAILABLE in {frozen_s:.2f} s with PostgreSQL frozen, {down_s:.2f} s with it killed")
    for exc in (refused.value, down.value):
        assert status_for(exc) is grpc.StatusCode.UNAVAILABLE
        assert "PostgreSQL" in str(exc) and "retry" in str(exc)
    assert frozen_s < app.settings.postgres_timeout_s + 1.0 and down_s < 1.0


async def _get_or_none(app: InferenceApp, task_id: str):
    from spoton_inference.domain.errors import NotFound

    try:
        return await app.tasks.get(task_id)
    except NotFound:
        return None
