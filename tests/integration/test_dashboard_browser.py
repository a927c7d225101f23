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
from support.browser import CHROMIUM_ARGS, require_chromium
from support.videos import VTEST

from spoton_client.client import SpotOnClient
from spoton_inference.launch import full_stack
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate
from spoton_inference.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SPOTON_ARTIFACTS_DIR", REPO / "var" / "artifacts"))
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
    chromium = require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
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
                    await page.click("#resume")
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
    """Press Pause (which pauses the task, or its playback once it is over); returns the state
    once the videos stopped and the overlay caught up."""
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
    """The Jobs panel: upload a real video with the page's form (its fps, detection threshold,
    homography and zones too), follow the job over its event stream (no polling) with its speed and time shown, wait
    for it to complete, press Play, and the annotated H.264 video plays in Chromium's player."""
    # Job lists the page read (the 401 before logging in aside).
    listed: list[str] = []

    def list_read(response) -> None:
        request = response.request
        if request.method == "GET" and request.url.split("?")[0].endswith("/api/v1/jobs") and response.ok:
            listed.append(request.url)

    page.on("response", list_read)
    try:
        await _log_in(page, stack.endpoints.facade_url, operator)
        await page.wait_for_function("() => window.spotonJobs && window.spotonJobs.state().list_loads > 0")
        await page.set_input_files("#job-file", str(job_video))
        await page.fill("#job-name", "browser upload")
        await page.fill("#job-fps", "10")
        await page.fill("#job-threshold", "0.4")
        await page.click("#job-more summary")
        # The frame's corners 1 px = 1 cm, and a zone on the left half of the picture.
        corners = [[0, 0], [640, 0], [640, 480], [0, 480]]
        homography = {"image_points": corners, "map_points": [[x / 100, y / 100] for x, y in corners]}
        zones = [{"zone_id": "left", "name": "Left half", "polygon": [[0, 0], [3.2, 0], [3.2, 4.8], [0, 4.8]]}]
        await page.fill("#job-homography", json.dumps(homography))
        await page.fill("#job-zones", json.dumps(zones))
        await page.click("#job-submit")
        uploaded = await _jobs_until(page, lambda s: s["upload"]["state"] != "uploading", "the upload")
        assert uploaded["upload"]["state"] == "done", uploaded["upload"]
        job_id = uploaded["upload"]["job_id"]

        def finished(s):
            return next((j["state"] for j in s["jobs"] if j["job_id"] == job_id), None) in {"completed", "failed"}

        done = await _jobs_until(page, finished, "the job to finish", timeout_s=180)
        job = next(j for j in done["jobs"] if j["job_id"] == job_id)
        assert job["state"] == "completed"
        # Followed over its event stream: the list was read on load and after the upload only.
        assert done["streams"]["updates"] >= 2 and done["list_loads"] == 2 == len(listed), (done, listed)
        # Processing speed kept after completion, and the time it took.
        assert job["frames_per_second"] > 0 and job["elapsed_seconds"] > 0, job
        row = await page.text_content(f'#job-list tr[data-job="{job_id}"]')
        assert "processing" in row and "took" in row, row
        async with _api(stack.endpoints.facade_url) as http:
            stored = (await http.get(f"/api/v1/jobs/{job_id}")).raise_for_status().json()
        assert stored["fps_override"] == 10 and stored["detection_threshold"] == pytest.approx(0.4), stored
        assert stored["has_homography"] and [z["zone_id"] for z in stored["zones"]] == ["left"], stored

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


# -- running a site: controls, task list, one task per site, jobs over SSE, real uploads ----------

FINAL_STATES = {"completed", "failed", "cancelled"}
# job_video's frames (tests/conftest.py).
JOB_FRAMES = 30


@pytest.fixture(scope="module")
def control_env_dir(env_dir, tmp_path_factory) -> Path:
    """The demo site again under another id: a site of its own for the control test's task."""
    copy = shutil.copytree(env_dir, tmp_path_factory.mktemp("control-env") / "control")
    doc = json.loads((copy / "environment.json").read_text())
    (copy / "environment.json").write_text(json.dumps({**doc, "id": "control-hall", "name": "Control hall"}))
    return copy


@pytest_asyncio.fixture(scope="module")
async def control_environment(stack, control_env_dir):
    async with SpotOnClient(stack.endpoints.grpc_target, api_key=ADMIN_API_KEY) as client:
        return await client.register_environment(control_env_dir)


def _api(facade: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(headers=admin_headers(), base_url=facade, timeout=httpx.Timeout(30, read=120))


async def _task(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/v1/processing-tasks/{task_id}/status")
    response.raise_for_status()
    return response.json()


async def _task_until(http, task_id: str, predicate, what: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not predicate(task := await _task(http, task_id)):
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {task}"
        await asyncio.sleep(0.1)
    return task


async def _upload(http: httpx.AsyncClient, video: Path, **fields: str) -> dict[str, Any]:
    with video.open("rb") as file:
        response = await http.post("/api/v1/jobs", data=fields, files={"file": (video.name, file)})
    response.raise_for_status()
    return response.json()


@pytest_asyncio.fixture(scope="module")
async def uploaded_job(stack, job_video) -> dict[str, Any]:
    """A job uploaded through the API at once; it runs while other tests do."""
    async with _api(stack.endpoints.facade_url) as http:
        return await _upload(http, job_video, name="uploaded for the task list")


async def _job_until(http, job_id: str, predicate, what: str, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not predicate(job := (await http.get(f"/api/v1/jobs/{job_id}")).raise_for_status().json()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {job}"
        await asyncio.sleep(0.2)
    return job


@pytest_asyncio.fixture(scope="module")
async def job_environment(stack, uploaded_job) -> str:
    """The environment the job made for its upload (origin "job")."""
    async with _api(stack.endpoints.facade_url) as http:
        job = await _job_until(http, uploaded_job["job_id"], lambda j: j["environment_id"], "its environment")
        return job["environment_id"]


@pytest_asyncio.fixture(scope="module")
async def finished_task(stack, uploaded_job) -> str:
    """The job's task, run to completion."""
    async with _api(stack.endpoints.facade_url) as http:
        job = await _job_until(http, uploaded_job["job_id"], lambda j: j["state"] in FINAL_STATES, "the job to end")
        assert job["state"] == "completed", job
        return job["task_id"]


async def test_the_picker_offers_sites_and_shows_their_plan_before_a_task(
    stack, environment, job_environment, page, operator
):
    """Sites only in the picker, a site chosen by default; its floor-plan image and every
    camera's field of view drawn before any task; a camera without a homography says why its
    people are not on the map; no heatmap picture (nor its alt text) before there is one."""
    facade = stack.endpoints.facade_url
    async with _api(facade) as http:
        bare = {
            "environment_id": "bare-site",
            "name": "Bare site",
            "metres_per_pixel": 0.01,
            "cameras": [
                {
                    "camera_id": "placed",
                    "fps": 10,
                    "width": 640,
                    "height": 480,
                    "homography": {"matrix": [0.01, 0, 0, 0, 0.01, 0, 0, 0, 1]},
                },
                {"camera_id": "unplaced", "fps": 10, "width": 640, "height": 480},
            ],
        }
        (await http.post("/api/v1/environments", json=bare)).raise_for_status()
    await _log_in(page, facade, operator)
    await page.wait_for_function("() => window.spoton && !document.getElementById('start').disabled")
    state = await _state(page)
    assert environment.environment_id in state["environments"] and "bare-site" in state["environments"]
    assert job_environment not in state["environments"]
    assert state["selected_environment"] in state["environments"]

    await page.select_option("#environment", environment.environment_id)
    cameras = sorted(c.camera_id for c in environment.cameras)
    state = await _until(page, lambda s: s["map"]["source"] == "image", "the floor-plan image")
    assert state["task_id"] is None
    assert sorted(state["map"]["fields_of_view"]) == cameras and state["map"]["unplaced"] == []
    assert sorted(state["cameras"]) == cameras
    heat = state["heatmap"]
    assert heat["images_in_page"] == 0 and not heat["shown"] and "No heatmap yet" in heat["placeholder"]
    assert await page.locator("#heatmap img").count() == 0

    await page.select_option("#environment", "bare-site")
    state = await _until(page, lambda s: s["map"]["unplaced"], "the unplaced camera's hint")
    assert state["map"]["fields_of_view"] == ["placed"] and state["map"]["source"] == "rectangle"
    assert [u["camera_id"] for u in state["map"]["unplaced"]] == ["unplaced"]
    assert "no homography" in await page.text_content("#unplaced")
    assert "no homography" in await page.text_content('figure[data-camera="unplaced"] figcaption')
    _no_csp_violations(page)


async def test_pause_resume_focus_and_cancel_control_the_task(stack, control_environment, page, operator):
    """Pause pauses the task itself (the API says paused, no frame is processed, the videos
    stop), a second start offers the running task rather than starting another (and starts
    another only when asked), Resume lets the task go on, a click on a map dot focuses that
    person through the service (its focus_update event highlights them) until Clear focus, and
    Cancel ends the task."""
    facade = stack.endpoints.facade_url
    env_id = control_environment.environment_id
    task_id = second = None
    async with _api(facade) as http:
        try:
            await _log_in(page, facade, operator)
            await page.wait_for_function("() => window.spoton && !document.getElementById('start').disabled")
            await page.select_option("#environment", env_id)
            await page.click("#start")
            state = await _until(page, lambda s: s["controls"]["enabled"]["pause"], "Pause to be offered")
            task_id = state["task_id"]
            await page.click("#pause")
            task = await _task_until(http, task_id, lambda t: t["state"] == "paused", "the task to pause", 30)
            # Resume is offered once the pause has been answered (the buttons wait for it).
            state = await _until(
                page, lambda s: s["task_state"] == "paused" and s["controls"]["enabled"]["resume"], "the page to pause"
            )
            assert state["paused"] and state["videos_playing"] == 0
            assert not state["controls"]["enabled"]["pause"]
            # The frame in flight when the pause came is finished; after it, nothing moves.
            await asyncio.sleep(0.5)
            task, state = await _task(http, task_id), await _state(page)
            await asyncio.sleep(1.5)
            still, later = await _task(http, task_id), await _state(page)
            assert still["state"] == "paused" and still["frames_processed"] == task["frames_processed"], (task, still)
            assert later["tracking_updates"] == state["tracking_updates"] and later["videos_playing"] == 0
            assert later["task_state"] == "paused" and later["paused"]

            # The site has a task going: a second start offers it instead of starting another.
            await page.click("#start")
            offer = (await _until(page, lambda s: s["offer"], "the running task to be offered"))["offer"]
            assert offer == {"environment_id": env_id, "task_id": task_id}
            listed = (await http.get("/api/v1/processing-tasks", params={"environment_id": env_id})).json()
            assert [t["task_id"] for t in listed["tasks"] if t["state"] not in FINAL_STATES] == [task_id]
            # Asked explicitly, another task starts beside it.
            await page.click("#start-another")
            state = await _until(page, lambda s: s["task_id"] not in (None, task_id), "another task to start")
            second = state["task_id"]
            listed = (await http.get("/api/v1/processing-tasks", params={"environment_id": env_id})).json()
            assert {t["task_id"] for t in listed["tasks"] if t["state"] not in FINAL_STATES} == {task_id, second}
            await http.post(f"/api/v1/processing-tasks/{second}/control", json={"action": "cancel"})
            await _task_until(http, second, lambda t: t["state"] == "cancelled", "the other task to cancel", 30)
            # The first one is still going: the next start offers it again, and Open follows it.
            await _until(page, lambda s: s["task_state"] == "cancelled", "the page to see the other task end")
            await page.click("#start")
            offer = (await _until(page, lambda s: s["offer"], "the running task to be offered again"))["offer"]
            assert offer == {"environment_id": env_id, "task_id": task_id}
            await page.click("#open-running")
            await _until(page, lambda s: s["offer"] is None and s["task_state"] == "paused", "the task to reopen")

            await page.click("#resume")
            await _task_until(
                http, task_id, lambda t: t["frames_processed"] > task["frames_processed"], "frames to advance", 30
            )
            await _until(page, lambda s: s["map"]["dots"] > 0, "people on the map")
            await page.click("#pause")
            await _until(page, lambda s: s["paused"] and s["task_state"] == "paused", "the task to pause again")
            # Where the dots are on the paused map (once the paused videos have settled on
            # their frame), in the canvas's CSS pixels.
            dot = (await _until(page, lambda s: s["map"]["dots_at"], "dots on the paused map", 10))["map"]["dots_at"][0]
            await page.locator("#map").click(position={"x": dot["x"], "y": dot["y"]})
            await _until(page, lambda s: s["controls"]["focus"] == dot["global_id"], "the focus", 10)
            assert (await _task(http, task_id))["focus_global_id"] == dot["global_id"]
            assert (await _state(page))["map"]["focus"] == dot["global_id"]
            await page.click("#clear-focus")
            await _until(page, lambda s: s["controls"]["focus"] == 0, "the focus to clear", 10)
            assert (await _task(http, task_id))["focus_global_id"] == 0

            await page.click("#cancel")
            task = await _task_until(http, task_id, lambda t: t["state"] in FINAL_STATES, "the task to end", 30)
            assert task["state"] == "cancelled", task
            # The event says cancelled, and the cancel has been answered.
            state = await _until(
                page,
                lambda s: s["task_state"] == "cancelled" and s["controls"]["actions"][-1]["status"],
                "the page to show it cancelled",
            )
            assert not state["controls"]["enabled"]["cancel"] and not state["controls"]["enabled"]["resume"]
            actions = [(a["action"], a["global_id"], a["status"]) for a in state["controls"]["actions"]]
            gid = dot["global_id"]
            expected = [("pause", 0, 200), ("resume", 0, 200), ("pause", 0, 200)]
            expected += [("focus", gid, 200), ("focus", 0, 200), ("cancel", 0, 200)]
            assert actions == expected, actions
        except BaseException:
            print("\n".join(page.console_log[-50:]))
            raise
        finally:
            for started in (task_id, second):
                if started and (await _task(http, started))["state"] not in FINAL_STATES:
                    await http.post(f"/api/v1/processing-tasks/{started}/control", json={"action": "cancel"})
    # The second start's 409 is the answer the page expects; Chromium logs it all the same.
    errors = [
        line
        for line in page.console_log
        if line.startswith(("pageerror", "console.error")) and "status of 409" not in line
    ]
    assert not errors, errors


async def test_the_task_list_reopens_a_finished_task_and_replays_it(stack, finished_task, page, operator):
    """The list shows the finished task (an uploaded job's); Open replays its events: every
    frame's tracks, boxes on the video, and a person focused by a click on their box."""
    facade = stack.endpoints.facade_url
    await _log_in(page, facade, operator)
    state = await _until(
        page, lambda s: any(t["task_id"] == finished_task for t in s["tasks"]["tasks"]), "the task in the list"
    )
    listed = next(t for t in state["tasks"]["tasks"] if t["task_id"] == finished_task)
    assert listed["state"] == "completed" and listed["progress"] == 1
    await page.click(f'#task-list button[data-open="{finished_task}"]')
    total = JOB_FRAMES

    def replayed(s):
        return s["task_id"] == finished_task and s["tracking_updates"] == total and s["task_state"] == "completed"

    # Every frame's tracks, then the final state (the last events of the stream).
    state = await _until(page, replayed, "the events to replay")
    assert state["stream"]["gaps"] == 0 and state["buffered_frames"] == total
    state = await _until(page, lambda s: any(c["boxes"] for c in s["cameras"].values()), "boxes on a video")
    assert state["stream"]["last_event_id"] > total

    # A click on a box focuses that person (the task is over: on this page only).
    camera = next(c for c, d in state["cameras"].items() if d["boxes"])
    await _pause(page)
    state = await _until(page, lambda s: s["cameras"][camera]["boxes"], "boxes on the paused video", 10)
    drawn = state["cameras"][camera]
    assert drawn["boxes"], drawn
    # The smallest box: a click on its middle is in no smaller one.
    boxes = zip(drawn["box_positions"], drawn["global_ids"], strict=True)
    _, (x1, y1, x2, y2), gid = min(((b[2] - b[0]) * (b[3] - b[1]), b, g) for b, g in boxes if g)
    scale = await page.evaluate(
        """(camera) => { const v = document.querySelector(`figure[data-camera="${camera}"] video`);
             return v.getBoundingClientRect().width / v.videoWidth; }""",
        camera,
    )
    await page.locator(f'figure[data-camera="{camera}"] .view').click(
        position={"x": (x1 + x2) / 2 * scale, "y": (y1 + y2) / 2 * scale}
    )
    await _until(page, lambda s: s["controls"]["focus"] == gid, "the focus", 10)
    assert f"#{gid}" in await page.text_content("#focus")
    await page.click("#clear-focus")
    await _until(page, lambda s: s["controls"]["focus"] == 0, "the focus to clear", 10)
    # The task is over: its heatmap is asked for. This job has no homography, so there may be
    # none; either way no empty or broken <img> is on the page.
    heat = (await _until(page, lambda s: s["heatmap"]["loads"] or s["heatmap"]["error"], "the heatmap"))["heatmap"]
    assert heat["images_in_page"] == int(heat["shown"]) and (heat["placeholder"] is None) == heat["shown"], heat
    errors = [line for line in page.console_log if line.startswith(("pageerror", "console.error"))]
    assert not errors, errors


async def test_an_uploaded_vtest_avi_plays_in_the_dashboard_with_moving_boxes(stack, page, operator, capsys):
    """OpenCV's vtest.avi (MPEG-4 part 2 in AVI) uploaded with the page's form: its job's task,
    opened from the Jobs panel, plays in the camera view (the video's time advances) with boxes
    that move with the people."""
    if not VTEST.exists():
        message = f"{VTEST} is missing: apt-get install opencv-doc (make samples does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    facade = stack.endpoints.facade_url
    job_id = None
    async with _api(facade) as http:
        try:
            await _log_in(page, facade, operator)
            await page.wait_for_function("() => window.spotonJobs && window.spotonJobs.state().list_loads > 0")
            await page.set_input_files("#job-file", str(VTEST))
            await page.click("#job-submit")
            uploaded = await _jobs_until(page, lambda s: s["upload"]["state"] != "uploading", "the upload", 60)
            assert uploaded["upload"]["state"] == "done", uploaded["upload"]
            job_id = uploaded["upload"]["job_id"]

            def has_task(s):
                return next((j["task_id"] for j in s["jobs"] if j["job_id"] == job_id), "")

            task_id = has_task(await _jobs_until(page, has_task, "the job's task", 120))
            await page.click(f'#job-list button[data-task="{task_id}"]')
            await _until(page, lambda s: s["task_id"] == task_id, "the job's task to open")
            samples = []
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                state = await _state(page)
                views = [c for c in state["cameras"].values() if c["src"]]
                if views and views[0]["frame"] is not None:
                    samples.append(views[0])
                    moved = {tuple(map(tuple, v["box_positions"])) for v in samples if v["boxes"]}
                    if views[0]["current_time"] > 2 and len(moved) >= 3:
                        break
                    assert views[0]["error"] is None, views[0]
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"vtest.avi did not play with moving boxes: {samples[-3:]}")
            view = samples[-1]
            assert view["src"].endswith(".mp4") and view["ready_state"] >= 2
            assert max(v["current_time"] for v in samples) > 2 and len({v["frame"] for v in samples}) > 10
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "dashboard-vtest.png"
            await page.locator("#layout").screenshot(path=str(shot))
        except BaseException:
            print("\n".join(page.console_log[-50:]))
            raise
        finally:
            if job_id:
                await http.post(f"/api/v1/jobs/{job_id}/cancel")
    errors = [line for line in page.console_log if line.startswith(("pageerror", "console.error"))]
    assert not errors, errors
    with capsys.disabled():
        print(f"\n[dashboard vtest] {len(samples)} samples, up to {view['current_time']:.1f} s: {shot}")
