"""The Node.js client (clients/node) against the real embedded stack: its own tests, run with
Node's test runner (``npm test``: the TypeScript build, a type check of the examples and
tests, then ``node --test``), and its examples run as child processes by them.

This test prepares what they need on ``live_service`` and hands it over in ``SPOTON_TEST_*``
variables (clients/node/test/support/live.js reads them):

- two environments of short videos without people, for tasks (one only the watch-task example
  starts tasks on, since it does not allow concurrent ones), and one of those videos to upload
  as a job;
- an environment with one camera of real footage, TUD-Campus (``../shared/real``, as
  tests/integration/test_real_footage.py uses it), and its first frames as JPEG files for the
  StreamFrames example.

Node and the package's npm dependencies come from ``make node`` (Debian's nodejs and npm,
then ``npm ci``); without them the test is skipped, and fails in CI.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
from pathlib import Path

import pytest

from spoton_inference.settings import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PACKAGE_DIR = REPO_ROOT / "clients" / "node"
TUD_CAMPUS = REPO_ROOT.parent / "shared" / "real" / "tud-campus"
STREAM_CAMERA = "c01"
# Enough frames for tracks to be confirmed and followed, few enough to stream in seconds.
STREAM_FRAMES = 20
TASK_ENVIRONMENT = "node-client-tasks"
EXAMPLE_ENVIRONMENT = "node-client-example"
STREAM_ENVIRONMENT = "node-client-site"
# The whole Node suite takes 30 to 70 s on a busy two-core machine.
NODE_TESTS_TIMEOUT_S = 300
# What `node --test` ends its TAP report with; every test must pass, none may be skipped.
TAP_COUNT = re.compile(r"^# (tests|pass|fail|skipped|cancelled|todo) (\d+)$", re.MULTILINE)
MIN_NODE_TESTS = 17


def _require_npm() -> str:
    """npm (and node), with the package's dependencies installed (skip here, fail in CI)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm and (PACKAGE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        return npm
    message = "node, npm or clients/node/node_modules is missing: make node installs them"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _stream_site(directory: Path) -> Path:
    """TUD-Campus as an environment of our own id (its video copied: registration refuses
    symlinks leading out of an environment directory)."""
    doc = json.loads((TUD_CAMPUS / "environment.json").read_text())
    video = directory / "cameras" / STREAM_CAMERA / "sub_video_01.mp4"
    video.parent.mkdir(parents=True)
    shutil.copyfile(TUD_CAMPUS / "cameras" / STREAM_CAMERA / "sub_video_01.mp4", video)
    (directory / "environment.json").write_text(json.dumps({**doc, "id": STREAM_ENVIRONMENT}))
    return directory


def _jpeg_frames(video: Path, out: Path, count: int) -> Path:
    import cv2

    out.mkdir()
    capture = cv2.VideoCapture(str(video))
    try:
        for index in range(count):
            ok, frame = capture.read()
            assert ok, f"{video} has fewer than {count} frames"
            cv2.imwrite(str(out / f"{index:06d}.jpg"), frame)
    finally:
        capture.release()
    return out


@pytest.mark.skipif(not TUD_CAMPUS.is_dir(), reason="the shared real footage is not beside the repository")
async def test_the_node_client_passes_its_tests_on_the_real_stack(live_service, tmp_path):
    npm = _require_npm()
    catalog = live_service.app.catalog
    tasks_dir = live_service.make_environment(TASK_ENVIRONMENT)
    for directory in (tasks_dir, live_service.make_environment(EXAMPLE_ENVIRONMENT)):
        await catalog.register_directory(str(directory))
    site = _stream_site(tmp_path / "site")
    await catalog.register_directory(str(site))
    frames = _jpeg_frames(site / "cameras" / STREAM_CAMERA / "sub_video_01.mp4", tmp_path / "frames", STREAM_FRAMES)
    fps = json.loads((site / "environment.json").read_text())["cameras"][0]["fps"]

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SPOTON_")},
        "SPOTON_TEST_TARGET": live_service.target,
        "SPOTON_TEST_API_KEY": live_service.api_key,
        "SPOTON_TEST_TASK_ENVIRONMENT": TASK_ENVIRONMENT,
        "SPOTON_TEST_EXAMPLE_ENVIRONMENT": EXAMPLE_ENVIRONMENT,
        "SPOTON_TEST_STREAM_ENVIRONMENT": STREAM_ENVIRONMENT,
        "SPOTON_TEST_STREAM_CAMERA": STREAM_CAMERA,
        "SPOTON_TEST_STREAM_FPS": str(fps),
        "SPOTON_TEST_FRAMES_DIR": str(frames),
        "SPOTON_TEST_VIDEO": str(tasks_dir / "cameras" / "c1" / "sub_video_01.mp4"),
        "NO_COLOR": "1",
    }
    # Asynchronously: the service under test answers from this process's event loop. In a
    # session of its own, so that a timeout ends npm's whole tree (node --test, the examples).
    process = await asyncio.create_subprocess_exec(
        npm,
        "test",
        cwd=PACKAGE_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(NODE_TESTS_TIMEOUT_S):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    report = output.decode(errors="replace")
    assert process.returncode == 0, f"npm test exited {process.returncode}:\n{report}"
    counts = {name: int(n) for name, n in TAP_COUNT.findall(report)}
    assert counts.get("tests", 0) >= MIN_NODE_TESTS, report
    assert counts.get("pass") == counts["tests"], report
    assert counts.get("skipped", 0) == counts.get("todo", 0) == counts.get("cancelled", 0) == 0, report
