"""`spoton track` then `spoton eval` on real footage: TUD-Campus (``../shared/real/tud-campus``).

The video goes through the real service both ways `spoton track` has for recorded video: as a
file (uploaded as a job, rendered on the server) and as a folder of cameras (a temporary
environment directory, rendered here). The run is then scored with TrackEval and motmetrics
and the two libraries must agree where they measure the same thing.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import av
import pytest
from support.auth import ADMIN_API_KEY

from spoton.v1 import catalog_pb2, jobs_pb2
from spoton_client.cli import main
from spoton_client.client import SpotOnClient
from spoton_client.evaluate import ALL_CAMERAS, evaluate
from spoton_client.track import TrackOptions, track
from spoton_inference.settings import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TUD_CAMPUS = REPO_ROOT.parent / "shared" / "real" / "tud-campus"
TUD_FRAMES = 71
LIVE_SECONDS = 6.0
# Measured per-camera IDF1 of the refined tracks: 0.84 (tests/integration/test_real_footage.py).
IDF1_FLOOR = 0.75
needs_footage = pytest.mark.skipif(
    not TUD_CAMPUS.is_dir(), reason="the shared real footage is not beside the repository"
)


def _exit_code(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def _frames(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


def _check_scores(gt: Path, run: Path) -> None:
    report = evaluate(gt, run)
    rows = {r.sequence: r for r in report.rows}
    cam = rows["c01"]
    # TrackEval and py-motmetrics compute IDF1 and MOTA by the same definitions at IoU 0.5.
    assert cam.trackeval["IDF1"] == pytest.approx(cam.motmetrics["idf1"], abs=0.005)
    assert cam.trackeval["MOTA"] == pytest.approx(cam.motmetrics["mota"], abs=0.005)
    assert cam.trackeval["IDF1"] >= IDF1_FLOOR
    # HOTA is the geometric mean of detection and association accuracy.
    hota, det, ass = cam.trackeval["HOTA"], cam.trackeval["DetA"], cam.trackeval["AssA"]
    assert 0.3 < hota < 1.0
    assert hota == pytest.approx((det * ass) ** 0.5, abs=0.02)
    assert rows[ALL_CAMERAS].trackeval["IDF1"] == pytest.approx(rows[ALL_CAMERAS].motmetrics["idf1"], abs=0.005)


@needs_footage
async def test_spoton_track_then_spoton_eval_on_a_video_file(live_service, tmp_path, capsys):
    """The command lines as a user types them; the file goes up as a job."""
    out, scores = tmp_path / "out", tmp_path / "scores.json"
    video = TUD_CAMPUS / "cameras" / "c01" / "sub_video_01.mp4"
    target = ["--target", live_service.target, "--api-key", ADMIN_API_KEY]
    # In a thread: the commands run their own event loop, as they do from a shell.
    assert await asyncio.to_thread(_exit_code, ["track", str(video), "--out", str(out), "--no-progress", *target]) == 0
    assert "completed: cameras camera" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    expected = {"camera.local.txt", "camera.global.txt", "trajectories.csv", "events.json", "camera.annotated.mp4"}
    assert expected | {"environment.json"} <= names
    assert _frames(out / "camera.annotated.mp4") == TUD_FRAMES
    async with SpotOnClient(live_service.target, api_key=ADMIN_API_KEY) as client:
        jobs = await client.jobs.ListJobs(jobs_pb2.ListJobsRequest())
    assert not [j for j in jobs.jobs if j.filename == video.name]  # the temporary job is gone

    assert (
        await asyncio.to_thread(_exit_code, ["eval", "--gt", str(TUD_CAMPUS), "--run", str(out), "--json", str(scores)])
        == 0
    )
    table = capsys.readouterr().out
    assert table.splitlines()[1].split()[:2] == ["c01", "local"]
    saved = json.loads(scores.read_text())
    assert [r["sequence"] for r in saved["rows"]] == ["c01", ALL_CAMERAS]
    _check_scores(TUD_CAMPUS, out)


@needs_footage
async def test_a_folder_of_cameras_is_tracked_and_scored(live_service, tmp_path):
    folder, out = tmp_path / "videos", tmp_path / "out"
    folder.mkdir()
    os.symlink(TUD_CAMPUS / "cameras" / "c01" / "sub_video_01.mp4", folder / "c01.mp4")
    async with SpotOnClient(live_service.target, api_key=ADMIN_API_KEY) as client:
        result = await track(client, str(folder), out, TrackOptions({}, show_progress=False))
    assert result.state == "completed", result.error
    assert result.camera_ids == ("c01",)
    assert _frames(out / "c01.annotated.mp4") == TUD_FRAMES
    assert not [p for p in out.iterdir() if p.name.startswith(".spoton-track-")]  # the temporary environment
    _check_scores(TUD_CAMPUS, out)


@needs_footage
@pytest.mark.parametrize("stop", ["duration", "ctrl-c"])
async def test_a_live_stream_is_tracked_until_its_duration_or_ctrl_c(live_service, rtsp_camera, tmp_path, stop):
    """An RTSP URL: a temporary environment with a camera the server pulls, a live task until
    --duration or Ctrl-C (asyncio.run cancels the main task), its updates written as the
    recorded exports are."""
    camera = await rtsp_camera(video=TUD_CAMPUS / "cameras" / "c01" / "sub_video_01.mp4")
    out = tmp_path / "out"
    options = TrackOptions({}, duration_s=LIVE_SECONDS if stop == "duration" else None, show_progress=False)
    async with SpotOnClient(live_service.target, api_key=ADMIN_API_KEY) as client:
        started = time.monotonic()
        running = asyncio.create_task(track(client, camera.url, out, options))
        if stop == "ctrl-c":
            await asyncio.sleep(LIVE_SECONDS)
            running.cancel()
        result = await running
        took = time.monotonic() - started
        envs = await client.catalog.ListEnvironments(catalog_pb2.ListEnvironmentsRequest())
    assert result.state == "completed", result.error
    assert LIVE_SECONDS <= took < LIVE_SECONDS + 30
    rows = [line.split(",") for line in (out / "camera.global.txt").read_text().splitlines()]
    assert len({r[0] for r in rows}) > 10 and len({r[1] for r in rows}) >= 2  # frames with people, several ids
    events = json.loads((out / "events.json").read_text())["events"]
    assert {"appeared", "left"} <= {e["type"] for e in events}
    assert json.loads((out / "environment.json").read_text())["cameras"][0]["fps"] == pytest.approx(25, abs=1)
    assert not [e for e in envs.environments if e.environment_id.startswith("track-")]  # removed after
