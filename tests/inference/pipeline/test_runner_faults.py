"""A detector that fails fails the batch with its reason: the runner never waits for ever.

The reported hang: with Triton unreachable when a batch started, the decode-and-detect stage
died without its end-of-queue marker, and the task sat at "preparing batch 1" for good. Here
the runner talks to a real Triton client pointed at a port nothing listens on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import socket
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from spoton_inference.domain.errors import Unavailable
from spoton_inference.files.environment_dir import load_environment_dir
from spoton_inference.files.media import MediaRoot
from spoton_inference.pipeline.runner import RunnerPorts, TaskPlan, TaskRunner
from spoton_inference.pipeline.tracking_settings import tracking_setup
from spoton_inference.pipeline.triton_models import OutageWait, TritonModels
from spoton_inference.settings import Settings

pytestmark = pytest.mark.timeout(60)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is: nothing listens there


def _environment(directory: Path) -> Path:
    for cam in ("c1", "c2"):
        path = directory / "cameras" / cam / "sub_video_01.mp4"
        path.parent.mkdir(parents=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
        for i in range(8):
            writer.write(np.full((120, 160, 3), 10 * i, np.uint8))
        writer.release()
    cameras = [{"id": cam, "name": cam, "fps": 10} for cam in ("c1", "c2")]
    (directory / "environment.json").write_text(json.dumps({"id": "faults", "name": "faults", "cameras": cameras}))
    return directory


def _runner(tmp_path: Path, models, steps: list[str]) -> TaskRunner:
    env = load_environment_dir(_environment(tmp_path / "env"))
    plan = TaskPlan(str(uuid.uuid4()), env, env.cameras, dt.datetime.now(dt.UTC))

    async def progress(frames: int, step: str) -> None:
        steps.append(step)

    async def ignore(_payload: object = None) -> None:
        return None

    ports = RunnerPorts(
        models=models,
        emit=ignore,
        store_points=lambda rows: None,
        report_progress=progress,
        media=MediaRoot(tmp_path / "media", "/media"),
        exports_dir=tmp_path / "exports",
        tracking_setup=functools.partial(tracking_setup, Settings(data_dir=tmp_path)),
        wait_if_paused=ignore,
    )
    return TaskRunner(plan, ports)


async def test_a_detector_that_cannot_reach_triton_fails_the_batch_instead_of_hanging(tmp_path):
    models = TritonModels(f"127.0.0.1:{_closed_port()}", "detector", "reid", timeout_s=5)
    steps: list[str] = []
    try:
        async with asyncio.timeout(30):  # the bug: this waited for ever
            with pytest.raises(Unavailable, match="Triton model 'detector'"):
                await _runner(tmp_path, models, steps).run()
    finally:
        await models.close()
    assert steps == ["preparing batch 1"]


async def test_past_its_bound_the_outage_wait_fails_the_batch_naming_triton_and_the_setting(tmp_path):
    models = TritonModels(f"127.0.0.1:{_closed_port()}", "detector", "reid", timeout_s=5)
    waits: list[str] = []

    async def on_wait(reason: str) -> None:
        waits.append(reason)

    steps: list[str] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(Unavailable, match="Triton stayed unavailable for 1 s") as failed:
            await _runner(tmp_path, OutageWait(models, 1.0, on_wait), steps).run()
    finally:
        await models.close()
    assert 1.0 <= loop.time() - started < 20
    assert "SPOTON_TRITON_OUTAGE_WAIT_S" in str(failed.value) and "start the task again" in str(failed.value)
    assert waits and waits[0].startswith("waiting for Triton")
