"""The dashboard at ``/`` in a real headless Chromium (Debian's ``chromium``, driven by
Playwright), against the embedded stack: start a task from the page, watch the videos play,
and check what the page drew against the task's own SSE stream.

What the page drew is read through its documented test hook, ``window.spoton.state()`` (see
``facade/spoton_facade/static/dashboard.js``): the global frame on screen per camera, the boxes
and global ids drawn for it, and the dots on the floor plan. The test reads the same task's
events over SSE itself and compares, frame by frame.

The screenshot goes to ``var/artifacts/dashboard.png`` (``SPOTON_ARTIFACTS_DIR`` overrides the
folder); its path and the time from the start request to the first ``tracking_update`` are
printed to the terminal.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
from support.auth import ADMIN_API_KEY, admin_headers, make_user

from spoton_client.client import SpotOnClient
from spoton_inference.launch import full_stack
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate
from spoton_inference.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CHROMIUM = Path(os.environ.get("SPOTON_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SPOTON_ARTIFACTS_DIR", REPO / "var" / "artifacts"))
# Headless, no sandbox (CI runs as root), no GPU, and none of Chromium's own traffic: this
# machine's network is closed, and background requests would only fail and slow it down.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--mute-audio",
]
FRAMES_PER_BATCH = 30
BATCHES = 2


@pytest.fixture(scope="module")
def env_dir(tmp_path_factory) -> Path:
    config = dataclasses.replace(demo_config(seed=11), frames_per_batch=FRAMES_PER_BATCH, n_batches=BATCHES, n_people=4)
    return generate(config, tmp_path_factory.mktemp("env") / "site")


@pytest_asyncio.fixture(scope="module")
async def stack(make_data_dir):
    async with full_stack(Settings(data_dir=make_data_dir("dashboard"), admin_api_key=ADMIN_API_KEY)) as running:
        yield running


@pytest_asyncio.fixture(scope="module")
async def environment(stack, env_dir):
    async with SpotOnClient(stack.endpoints.grpc_target, api_key=ADMIN_API_KEY) as client:
        return await client.register_environment(env_dir)


@pytest_asyncio.fixture(scope="module")
async def operator(stack) -> tuple[str, str]:
    """A dashboard user who may run tasks and upload jobs (an operator, not the admin)."""
    username, password = "dashboard-operator", "operator password 42"
    await make_user(stack.endpoints.grpc_target, username, password, "operator")
    return username, password


async def _log_in(page, facade: str, user: tuple[str, str]) -> None:
    """Open the dashboard as a browser with no session would: it sends us to the login page;
    logging in there brings the dashboard back, working through the session cookie alone."""
    await page.goto(facade)
    await page.wait_for_url(f"{facade}/login")
    # The API's 401s that sent the page here are the browser's console errors, and expected.
    assert any("401" in m for m in page.console_log), page.console_log
    _no_csp_violations(page)
    page.console_log.clear()
    await page.fill("#username", user[0])
    await page.fill("#password", user[1])
    await page.click("#login-submit")
    await page.wait_for_url(f"{facade}/")
    await page.wait_for_function("() => document.getElementById('whoami').textContent !== ''")
    assert user[0] in await page.text_content("#whoami")


def _no_csp_violations(page) -> None:
    """The page's own scripts and styles only: nothing the Content-Security-Policy refused."""
    refused = [m for m in page.console_log if "Content Security Policy" in m or "Content-Security-Policy" in m]
    assert not refused, refused


@pytest_asyncio.fixture
async def page():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            page = await context.new_page()
            page.console_log = []
            page.on("console", lambda m: page.console_log.append(f"console.{m.type}: {m.text}"))
            page.on("pageerror", lambda e: page.console_log.append(f"pageerror: {e}"))
            yield page
        finally:
            await browser.close()


async def test_dashboard_plays_a_task_with_boxes_and_map_dots_in_sync(
    stack, environment, env_dir, page, operator, capsys
):
    facade = stack.endpoints.facade_url
    cameras = [c.camera_id for c in environment.cameras]
    total_frames = FRAMES_PER_BATCH * BATCHES
    sse: asyncio.Task | None = None
    try:
        await _log_in(page, facade, operator)
        await page.wait_for_function("() => window.spoton && !document.getElementById('start').disabled")
        assert (await _state(page))["health"] in {"healthy", "degraded"}
        await page.select_option("#environment", environment.environment_id)
        await page.click("#start")
        state = await _until(page, lambda s: s["task_id"], "the task to start")
        task_id = state["task_id"]

        # The test's own view of the task: every tracking_update, read from the facade's SSE.
        sse = asyncio.create_task(_read_sse(facade, task_id))
        samples, dropped, shot, shot_state, tries, on_screen = [], False, None, None, 0, []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            state = await _state(page)
            samples.append(state)
            if not dropped and state["tracking_updates"] >= total_frames // 4 and state["stream"]["connected"]:
                # Lose the event stream mid-task: the page must resume after its Last-Event-ID.
                await page.evaluate("window.spoton.dropConnection()")
                dropped = True
            if shot is None and tries < 5 and _drawn_boxes_and_dots(state):
                # Pause with the page's own button, so the picture shows the state that was read.
                tries += 1
                paused = await _pause(page)
                try:
                    on_screen = on_screen or await _frames_on_screen(page, paused, env_dir)
                    if _drawn_boxes_and_dots(paused):
                        shot, shot_state = await _screenshot(page), paused
                finally:
                    await page.click("#pause")
            if state["task_state"] == "completed" and state["batch"] == BATCHES - 1 and _all_ended(state, cameras):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"playback did not finish; last state {json.dumps(state)}")

        if shot is None:
            shot, shot_state = await _screenshot(page), await _state(page)
        updates = await asyncio.wait_for(sse, 60)
        final = await _state(page)
    except BaseException:
        print("\n".join(page.console_log[-50:]))
        raise
    finally:
        if sse is not None:
            sse.cancel()

    timings = final["timings_ms"]
    with capsys.disabled():
        print(
            f"\n[dashboard] screenshot: {shot} ({_describe(shot_state)})"
            f"\n[dashboard] start request -> task created {timings['task_created']} ms, "
            f"first event {timings['first_event']} ms, "
            f"first tracking_update over SSE {timings['first_tracking_update']} ms"
        )
    assert timings["first_tracking_update"] is not None

    errors = [line for line in page.console_log if line.startswith(("pageerror", "console.error"))]
    assert not errors, errors

    # Every frame's update reached the page and is still buffered: none dropped, none missing.
    assert len(updates[0]) == total_frames
    assert final["tracking_updates"] == final["buffered_frames"] == total_frames
    assert dropped and final["stream"]["reconnects"] >= 1 and final["stream"]["gaps"] == 0, final["stream"]

    # The videos played: every camera was seen playing, in both batches, with time advancing.
    for batch in range(BATCHES):
        playing = [s for s in samples if s["batch"] == batch and s["videos_playing"] == len(cameras)]
        assert playing, f"batch {batch}: the videos never all played"
        times = [s["cameras"][cameras[0]]["current_time"] for s in playing]
        assert max(times) > min(times)
    assert all(final["cameras"][c]["src"].endswith("sub_video_02.mp4") for c in cameras)

    # The frame the page says is on screen is the one the video shows: the browser's pixels of
    # each paused video match that frame of the sub-video best. Only where that is decisive: a
    # camera with nobody moving in view shows nearly the same picture in consecutive frames.
    decisive = [(camera, said, matched) for camera, said, matched, best, second in on_screen if second > 3 * best]
    assert decisive, f"no paused camera view told its frame apart: {on_screen}"
    for camera, said, matched in decisive:
        assert said == matched, f"{camera}: the page says frame {said} of its sub-video, the pixels are {matched}'s"

    # The overlay: whenever a camera showed a frame, it drew exactly that frame's tracks, the
    # online ones until the refined ones of its batch arrived, then those.
    online, refined = updates
    assert sorted(refined) == list(range(total_frames)) and final["tracks_refined"] >= BATCHES
    compared = with_boxes = 0
    for s in samples:
        for camera, drawn in s["cameras"].items():
            if drawn["frame"] is None or not drawn["has_data"]:
                continue
            tracks = (refined if drawn["refined"] else online)[drawn["frame"]].get(camera, [])
            assert drawn["boxes"] == len(tracks), (camera, drawn, tracks)
            assert sorted(drawn["global_ids"]) == sorted(t["global_id"] for t in tracks)
            compared += 1
            with_boxes += drawn["boxes"] > 0
    assert compared >= 20 and with_boxes >= 10, (compared, with_boxes)
    shown = {s["cameras"][c]["frame"] for s in samples for c in s["cameras"]} - {None}
    assert {f // FRAMES_PER_BATCH for f in shown} == set(range(BATCHES)), "not every batch was shown"

    # The floor plan: one dot per global id placed on the map at the frame on screen.
    with_dots = [s["map"] for s in samples if s["map"]["dots"] > 0]
    assert len(with_dots) >= 5
    # Drawn over the environment's floor-plan image, which the API publishes under the media root.
    assert {drawn["source"] for drawn in with_dots} == {"image"}
    for drawn in with_dots:
        frame = (refined if drawn["refined"] else online)[drawn["frame"]]
        expected = {t["global_id"] for tracks in frame.values() for t in tracks if t["global_id"] and t["map_coords"]}
        assert drawn["global_ids"] == sorted(expected), (drawn, frame)

    # Once the task is over, the heatmap of where its people spent time is on the page.
    heat = (await _until(page, lambda s: s["heatmap"]["loads"] >= 1, "the heatmap to load"))["heatmap"]
    assert heat["task_id"] == task_id and heat["shown"] and heat["error"] is None, heat
    _no_csp_violations(page)

    playing_samples = [(s, c) for s in samples for c, drawn in s["cameras"].items() if drawn["playing"]]
    in_sync = sum(s["cameras"][c]["has_data"] for s, c in playing_samples) / max(1, len(playing_samples))
    with capsys.disabled():
        print(
            f"[dashboard] {len(samples)} samples, {compared} camera frames compared ({with_boxes} with boxes), "
            f"{len(with_dots)} with map dots; while playing, {in_sync:.0%} of frames shown had their tracks"
            f"\n[dashboard] paused frames matched by pixels: "
            + "; ".join(
                f"{c} frame {said} (MSE {best:.1f}, next best {second:.1f})" for c, said, _, best, second in on_screen
            )
        )


def _drawn_boxes_and_dots(state: dict[str, Any]) -> bool:
    """Three boxes or more over two cameras or more, and dots on the map: a picture worth keeping."""
    boxes = [c["boxes"] for c in state["cameras"].values()]
    return sum(boxes) >= 3 and sum(b > 0 for b in boxes) >= min(2, len(boxes)) and state["map"]["dots"] > 0


def _describe(state: dict[str, Any] | None) -> str:
    if state is None:
        return "nothing read"
    cameras = ", ".join(f"{c} frame {d['frame']}: {d['boxes']} boxes" for c, d in state["cameras"].items())
    return f"{cameras}; map frame {state['map']['frame']}: {state['map']['dots']} dots"


def _all_ended(state: dict[str, Any], cameras: list[str]) -> bool:
    return all(state["cameras"].get(c, {}).get("ended") for c in cameras)


async def _state(page) -> dict[str, Any]:
    return await page.evaluate("window.spoton.state()")


async def _until(page, predicate: Callable[[dict[str, Any]], Any], what: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        state = await _state(page)
        if predicate(state):
            return state
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {json.dumps(state)}"
        await asyncio.sleep(0.1)


async def _pause(page) -> dict[str, Any]:
    """Press Pause; returns the state once the videos stopped and the overlay caught up."""
    await page.click("#pause")
    await _until(page, lambda s: s["paused"] and not s["videos_playing"], "playback to pause", 10)
    # Pausing lines the cameras up on one moment (a seek); then two animation frames, so the
    # overlay shows the frame the videos stopped on.
    await page.evaluate(
        """() => Promise.all([...document.querySelectorAll("video")].filter((v) => v.seeking)
            .map((v) => new Promise((r) => v.addEventListener("seeked", r, { once: true }))))
          .then(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))"""
    )
    return await _state(page)


async def _frames_on_screen(page, state: dict[str, Any], env_dir: Path) -> list[tuple[str, int, int, float, float]]:
    """Per camera: the frame of its sub-video the page says it shows, the one whose pixels
    match the paused video's best, and the two best mean squared errors."""
    import cv2

    out = []
    for camera, drawn in state["cameras"].items():
        if drawn["frame"] is None:
            continue
        url = await page.evaluate(
            """(camera) => {
                const video = document.querySelector(`figure[data-camera="${camera}"] video`);
                const canvas = document.createElement("canvas");
                [canvas.width, canvas.height] = [video.videoWidth, video.videoHeight];
                canvas.getContext("2d").drawImage(video, 0, 0);
                return canvas.toDataURL("image/png");
            }""",
            camera,
        )
        shown = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
        capture = cv2.VideoCapture(str(env_dir / "cameras" / camera / f"sub_video_{drawn['batch'] + 1:02d}.mp4"))
        errors = []
        while (frame := capture.read()[1]) is not None:
            errors.append(float(np.mean((frame.astype(np.float32) - shown.astype(np.float32)) ** 2)))
        capture.release()
        said = drawn["frame"] - drawn["batch"] * FRAMES_PER_BATCH
        best, second = sorted(errors)[:2]
        out.append((camera, said, int(np.argmin(errors)), best, second))
    return out


async def _screenshot(page) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "dashboard.png"
    partial = path.with_suffix(".partial.png")
    await page.screenshot(path=str(partial), full_page=True)
    shutil.move(partial, path)
    return path


Frames = dict[int, dict[str, list[dict[str, Any]]]]


async def _read_sse(facade: str, task_id: str) -> tuple[Frames, Frames]:
    """Every tracking_update of the task, and every frame's refined tracks (tracks_refined), by
    global frame, from the start to the task's end."""
    updates: Frames = {}
    refined: Frames = {}
    async with (
        httpx.AsyncClient(headers=admin_headers(), base_url=facade, timeout=httpx.Timeout(10, read=120)) as http,
        http.stream("GET", f"/api/v1/processing-tasks/{task_id}/events") as response,
    ):
        response.raise_for_status()
        event: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                key, _, value = line.partition(":")
                event[key] = value.removeprefix(" ")
                continue
            if event.get("event") == "tracking_update":
                data = json.loads(event["data"])
                updates[data["global_frame_index"]] = {c["camera_id"]: c["tracks"] for c in data["cameras"]}
            elif event.get("event") == "tracks_refined":
                for update in json.loads(event["data"])["updates"]:
                    refined[update["global_frame_index"]] = {c["camera_id"]: c["tracks"] for c in update["cameras"]}
            event = {}
    return updates, refined


async def test_a_job_uploaded_from_the_dashboard_plays_annotated_in_its_player(
    stack, page, operator, job_video, capsys
):
    """The Jobs panel: upload a real video with the page's form, wait for the job to complete,
    press Play, and the annotated H.264 video plays in Chromium's player."""
    try:
        await _log_in(page, stack.endpoints.facade_url, operator)
        await page.wait_for_function("() => window.spotonJobs")
        await page.set_input_files("#job-file", str(job_video))
        await page.fill("#job-name", "browser upload")
        await page.click("#job-submit")
        uploaded = await _jobs_until(page, lambda s: s["upload"]["state"] != "uploading", "the upload")
        assert uploaded["upload"]["state"] == "done", uploaded["upload"]
        job_id = uploaded["upload"]["job_id"]

        def finished(s):
            return next((j["state"] for j in s["jobs"] if j["job_id"] == job_id), None) in {"completed", "failed"}

        done = await _jobs_until(page, finished, "the job to finish", timeout_s=180)
        assert next(j for j in done["jobs"] if j["job_id"] == job_id)["state"] == "completed"

        await page.click(f'button[data-play="{job_id}"]')
        playing = await _jobs_until(
            page, lambda s: s["player"]["current_time"] > 0.5 or s["player"]["error"], "the video to play", 60
        )
        player = playing["player"]
        assert player["error"] is None and player["src"].endswith(f"/api/v1/jobs/{job_id}/video")
        assert (player["video_width"], player["video_height"]) == (640, 480)
        assert player["duration"] == pytest.approx(3.0, abs=0.2) and player["ready_state"] >= 2
        # Real pixels on screen, not a black frame.
        spread = await page.evaluate(
            """() => {
                const video = document.getElementById("job-video");
                const canvas = document.createElement("canvas");
                [canvas.width, canvas.height] = [video.videoWidth, video.videoHeight];
                const context = canvas.getContext("2d");
                context.drawImage(video, 0, 0);
                const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
                let min = 255, max = 0;
                for (let i = 0; i < data.length; i += 4) { min = Math.min(min, data[i]); max = Math.max(max, data[i]); }
                return max - min;
            }"""
        )
        assert spread > 50, spread
        ended = await _jobs_until(page, lambda s: s["player"]["ended"], "the video to play to its end", 30)
        assert ended["player"]["current_time"] == pytest.approx(3.0, abs=0.2)
        await page.evaluate("document.getElementById('job-video').currentTime = 1.5")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "dashboard-jobs.png"
        await page.locator("#jobs").screenshot(path=str(shot))
    except BaseException:
        print("\n".join(page.console_log[-50:]))
        raise
    errors = [line for line in page.console_log if line.startswith(("pageerror", "console.error"))]
    assert not errors, errors
    with capsys.disabled():
        print(f"\n[dashboard jobs] screenshot: {shot}")


async def _jobs_until(page, predicate, what: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        state = await page.evaluate("window.spotonJobs.state()")
        if predicate(state):
            return state
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {json.dumps(state)}"
        await asyncio.sleep(0.1)
