"""A soak across replicas, bounded in time: replicas die mid-task and nothing is lost or doubled.

Three inference replicas share the embedded PostgreSQL, Redis and Triton: live_service (A, the
default 120 s lease), B (in this process, a 3 s lease, so its fail-over sweep runs every 0.75 s)
and R (a child process with a 3 s lease, SIGKILLed mid-task). Two facades: one in front of R, one
in front of B. Tasks are started through both facades over REST, so some run on R and some on B;
every task is followed by two SSE clients, one through each facade. R dies with one task paused
(pinned mid-task) and one tracking, while B's tasks track. The clients on R's facade lose their
stream and resume through B's with ``Last-Event-ID``, as a browser behind a load balancer does.
Then:

- every task ends within the bound: B's complete, R's are failed over with a reason naming R;
- every client saw event ids 1..N without a gap, ending in the final status, and the clients of
  one task saw the same events, whichever facade served them (no events lost);
- no track point is stored twice, and no MOT export line is written twice; the exports of R's
  tasks hold exactly the stored points (the fail-over rebuilt them from the table).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from support.auth import admin_headers
from support.services import serving
from support.sse import sse_blocks

from spoton_facade.settings import FacadeSettings
from spoton_inference.app import InferenceApp
from spoton_inference.embedded.ports import LOOPBACK, pick_free_ports
from spoton_inference.embedded.supervisor import ChildProcess
from spoton_inference.launch import inference_child
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
BASE = "/api/v1/processing-tasks"
# The replicas' lease: R's tasks are failed over within about TTL + TTL/4 of its death.
LEASE_TTL_S = 3.0
# Tasks started through B's facade, which run on B to their end.
TASKS_ON_B = 3
# Frames per sub-video: a task's track points are stored as each one ends (refined), 4 to a task.
FRAMES_PER_BATCH = 20
# R dies once its tracking task has tracked this many frames (of 80): past its first batch (so
# with track points stored), mid-way through its second, far from its end.
KILL_AFTER_FRAMES = 25
# The whole scenario, R's start to the last assertion, stays within this.
SOAK_BOUND_S = 90.0
# From R's death until every task has ended and every client has its final status.
ENDED_WITHIN_S = 45.0
# Track points per batch on R (SPOTON_WRITER_BATCH_SIZE; 10 000 by default).
R_WRITER_BATCH = 8
# A client cut off from its facade tries again this often (EventSource's retry), at most so many times.
RETRY_S = 0.2
MAX_RECONNECTS = 20
FINAL_STATES = {"completed", "failed", "cancelled"}
Event = tuple[int, str, str]  # an SSE block's id, event and data, as sent


@dataclasses.dataclass
class Follower:
    """One SSE client of one task: the events it saw and the facades it read them from."""

    task_id: str
    events: list[Event] = dataclasses.field(default_factory=list)
    served_by: list[str] = dataclasses.field(default_factory=list)

    @property
    def final_state(self) -> str:
        event, data = self.events[-1][1], json.loads(self.events[-1][2])
        return data["state"] if event == "status_update" and data["state"] in FINAL_STATES else ""


async def _read_stream(http: httpx.AsyncClient, follower: Follower) -> None:
    """Read the task's events from one facade until its final status, the stream ends (an
    ``event: problem`` block or a cut connection), or the facade refuses."""
    headers = {"Last-Event-ID": str(follower.events[-1][0])} if follower.events else {}
    async with http.stream("GET", f"{BASE}/{follower.task_id}/events", headers=headers) as response:
        if response.status_code != 200:
            return
        async for block in sse_blocks(response):
            if "id" in block:  # a problem block has none: the stream ends after it
                follower.events.append((int(block["id"]), block["event"], block["data"]))
                if follower.final_state:
                    return


async def _follow(task_id: str, facades: list[str]) -> Follower:
    """An SSE client of ``task_id``: through ``facades[0]``, and after a lost stream through
    the next one (the last one for good), resuming after the last event id it saw."""
    follower = Follower(task_id)
    for attempt in range(MAX_RECONNECTS):
        url = facades[min(attempt, len(facades) - 1)]
        follower.served_by.append(url)
        with contextlib.suppress(httpx.TransportError):  # the facade's connection cut: reconnect
            async with httpx.AsyncClient(headers=admin_headers(), base_url=url, timeout=30) as http:
                await _read_stream(http, follower)
        if follower.events and follower.final_state:
            return follower
        await asyncio.sleep(RETRY_S)
    raise AssertionError(f"task {task_id}: no final status after {MAX_RECONNECTS} connections: {follower}")


async def _status(http: httpx.AsyncClient, task_id: str) -> dict:
    response = await http.get(f"{BASE}/{task_id}/status")
    assert response.status_code == 200, response.text
    return response.json()


async def _until_tracked(http: httpx.AsyncClient, task_id: str, frames: int = 1) -> None:
    """Until the task has tracked ``frames`` frames (polled, as a client polls a task's status)."""
    async with asyncio.timeout(30):
        while True:
            task = await _status(http, task_id)
            assert task["state"] not in FINAL_STATES, task
            if task["frames_processed"] >= frames:
                assert task["frames_processed"] < task["total_frames"] // 2, task  # still well short of its end
                return
            await asyncio.sleep(0.05)


@pytest_asyncio.fixture(scope="module")
async def people_environment(tmp_path_factory) -> Path:
    """Three cameras, three people walking, 4 sub-videos of 20 frames: tracks to store and
    export, and a task long enough that R dies well before its end."""
    config = dataclasses.replace(
        demo_config(seed=21), env_id="soak-hall", frames_per_batch=FRAMES_PER_BATCH, n_batches=4, n_people=3
    )
    return generate(config, tmp_path_factory.mktemp("soak") / "site")


@pytest_asyncio.fixture(scope="module")
async def replica_b(live_service, make_data_dir) -> AsyncIterator[tuple[InferenceApp, str]]:
    (port,) = pick_free_ports(1)
    settings = dataclasses.replace(
        live_service.settings,
        data_dir=make_data_dir("soak-b"),  # a journal of its own; media (exports) shared, as replicas share it
        grpc_port=port,
        replica_id="soak-b",
        replica_lease_ttl_s=LEASE_TTL_S,
    )
    async with serving(settings) as app:
        yield app, f"{LOOPBACK}:{port}"


@contextlib.asynccontextmanager
async def _replica_r(live_service, make_data_dir) -> AsyncIterator[tuple[ChildProcess, str]]:
    (port,) = pick_free_ports(1)
    target = f"{LOOPBACK}:{port}"
    settings = dataclasses.replace(
        live_service.settings,
        data_dir=make_data_dir("soak-r"),
        grpc_port=port,
        inference_target=target,
        replica_id="soak-r",
        replica_lease_ttl_s=LEASE_TTL_S,
        # Small batches, so track points reach PostgreSQL while its tasks run (and it dies with some stored).
        writer_batch_size=R_WRITER_BATCH,
    )
    child = ChildProcess(inference_child(settings))
    await child.start()
    try:
        yield child, target
    finally:
        await child.stop()


async def test_killing_a_replica_mid_task_loses_no_events_and_doubles_no_rows(
    live_service, replica_b, people_environment, serve_facade, make_data_dir
):
    app_b, target_b = replica_b
    env_id = (await app_b.catalog.register_directory(str(people_environment))).environment_id
    media_root = live_service.settings.media_root
    started = time.monotonic()
    async with (
        asyncio.timeout(SOAK_BOUND_S),
        _replica_r(live_service, make_data_dir) as (r, target_r),
        serve_facade(FacadeSettings(inference_target=target_r, media_root=media_root)) as facade_r,
        serve_facade(FacadeSettings(inference_target=target_b, media_root=media_root)) as facade_b,
        httpx.AsyncClient(headers=admin_headers(), base_url=facade_r, timeout=30) as via_r,
        httpx.AsyncClient(headers=admin_headers(), base_url=facade_b, timeout=30) as via_b,
    ):
        body = {"environment_id": env_id, "allow_concurrent": True}
        followers: dict[str, list[asyncio.Task[Follower]]] = {}

        def follow(task_id: str) -> None:
            # One client stays on B's facade; the other starts on R's, and moves to B's once R is gone.
            followers[task_id] = [
                asyncio.create_task(_follow(task_id, [facade_b])),
                asyncio.create_task(_follow(task_id, [facade_r, facade_b])),
            ]

        paused = (await via_r.post(f"{BASE}/start", json=body)).json()["task_id"]
        follow(paused)
        await _until_tracked(via_r, paused)
        # Paused, so R is surely still running it when it dies.
        assert (await via_r.post(f"{BASE}/{paused}/control", json={"action": "pause"})).status_code == 200
        on_b = [(await via_b.post(f"{BASE}/start", json=body)).json()["task_id"] for _ in range(TASKS_ON_B)]
        tracking = (await via_r.post(f"{BASE}/start", json=body)).json()["task_id"]
        on_r = [paused, tracking]
        for task_id in [*on_b, tracking]:
            follow(task_id)
        await _until_tracked(via_b, on_b[0])
        # R dies while tracking: track points and events in flight, exports half written.
        await _until_tracked(via_r, tracking, KILL_AFTER_FRAMES)

        assert r.pid is not None
        os.kill(r.pid, signal.SIGKILL)
        killed = time.monotonic()
        async with asyncio.timeout(ENDED_WITHIN_S):
            seen = {task_id: await asyncio.gather(*clients) for task_id, clients in followers.items()}
        ended_after_s = time.monotonic() - killed
        records = {task_id: await _status(via_b, task_id) for task_id in on_r + on_b}

    for task_id, (steady, moved) in seen.items():
        ids = [event[0] for event in steady.events]
        assert ids == list(range(1, len(ids) + 1)), (task_id, ids)
        assert moved.events == steady.events, task_id  # the same events, whichever facade served them
        assert steady.served_by == [facade_b]
        state = steady.final_state
        assert records[task_id]["state"] == state
        if task_id in on_r:
            assert state == "failed" and "replica soak-r" in records[task_id]["error"], records[task_id]
            assert json.loads(steady.events[-1][2])["error"] == records[task_id]["error"]
        else:
            assert state == "completed", records[task_id]
            assert records[task_id]["frames_processed"] == records[task_id]["total_frames"]
        assert len(moved.served_by) > 1, f"{task_id}: the client on R's facade never lost its stream"

    points = await _stored_points(app_b, on_r + on_b)
    for task_id in on_r + on_b:
        count, distinct = points[task_id]
        assert count == distinct, f"task {task_id}: {count - distinct} track points stored twice"
        lines = _mot_lines(media_root, task_id)
        assert len(lines) == len(set(lines)), f"task {task_id}: MOT export lines written twice"
    # The checks above had rows to check: B's tasks stored all theirs, R's tracking one its first batch's.
    assert all(points[task_id][0] > 0 for task_id in [*on_b, tracking])
    for task_id in on_r:
        camera_ids = records[task_id]["camera_ids"]
        local = [line for line in _mot_lines(media_root, task_id) if line[0] in {f"{c}.local.txt" for c in camera_ids}]
        assert len(local) == points[task_id][0], f"task {task_id}: exports and stored points differ"
    total_s = time.monotonic() - started
    stored = sorted(n for n, _ in points.values())
    print(f"soak: {len(seen)} tasks ({stored} track points); ended {ended_after_s:.1f} s after R died; {total_s:.0f} s")


async def _stored_points(app: InferenceApp, task_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Per task: its stored track points, and how many distinct (camera, frame, local track) they are."""
    async with app.db.pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT task_id, count(*) AS n, count(DISTINCT (camera_id, global_frame_index, local_id)) AS d
               FROM track_points WHERE task_id = ANY($1::uuid[]) GROUP BY task_id""",
            [uuid.UUID(t) for t in task_ids],
        )
    found = {str(row["task_id"]): (row["n"], row["d"]) for row in rows}
    return {task_id: found.get(task_id, (0, 0)) for task_id in task_ids}


def _mot_lines(media_root: Path, task_id: str) -> list[tuple[str, str]]:
    """(file name, line) of every line of the task's MOT exports (``<camera>.global.txt`` and ``.local.txt``)."""
    exports = media_root / "tasks" / task_id / "exports"
    files = sorted([*exports.glob("*.global.txt"), *exports.glob("*.local.txt")])
    return [(path.name, line) for path in files for line in path.read_text().splitlines()]
