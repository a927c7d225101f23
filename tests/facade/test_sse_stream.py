"""The SSE route end to end, over real HTTP and the real inference service: the wire format,
``Last-Event-ID`` resume, heartbeats, a 410 past the retention window, and the last client of a
task going away taking the gRPC WatchTask stream they shared with it at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx

from spoton_inference.domain.events import BatchProcessingComplete
from spoton_inference.storage.redis_events import RedisEventLog

BASE = "/api/v1/processing-tasks"
FINAL = ("completed", "failed", "cancelled")


async def _start(client: httpx.AsyncClient, environment_id: str, *, paused: bool = False) -> str:
    task_id = (await client.post(f"{BASE}/start", json={"environment_id": environment_id})).json()["task_id"]
    if paused:
        assert (await client.post(f"{BASE}/{task_id}/control", json={"action": "pause"})).status_code == 200
    return task_id


async def _finished(client: httpx.AsyncClient, task_id: str) -> None:
    async with asyncio.timeout(60):
        while True:  # polling the route is the point: no event to wait on
            if (await client.get(f"{BASE}/{task_id}/status")).json()["state"] in FINAL:
                return
            await asyncio.sleep(0.05)


async def _blocks(response: httpx.Response) -> AsyncIterator[list[str]]:
    """Raw SSE blocks as their lines, comments included."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if line:
            lines.append(line)
        elif lines:
            yield lines
            lines = []


async def _next_event(blocks: AsyncIterator[list[str]]) -> list[str]:
    """The next block that is not a comment (a heartbeat may come first on a busy machine)."""
    while (lines := await anext(blocks))[0].startswith(":"):
        pass
    return lines


def _event(lines: list[str]) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in lines if not line.startswith(":"))


async def _read_all(client: httpx.AsyncClient, task_id: str, **headers: str) -> list[dict[str, str]]:
    async with client.stream("GET", f"{BASE}/{task_id}/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [_event(lines) async for lines in _blocks(response) if not lines[0].startswith(":")]


async def _open_watches(live_service, expected: int) -> None:
    """Wait (briefly) until the service serves exactly ``expected`` WatchTask streams."""
    async with asyncio.timeout(2.0):
        while True:  # a plain counter in the service: polled, it has no event to wait on
            if live_service.app.tasks.open_watches == expected:
                return
            await asyncio.sleep(0.01)


async def test_wire_format_and_last_event_id_resume(live_client, registered) -> None:
    task_id = await _start(live_client, await registered("sse-resume"))
    await _finished(live_client, task_id)
    events = await _read_all(live_client, task_id)
    ids = [int(e["id"]) for e in events]
    assert ids == list(range(1, len(ids) + 1))
    for event in events:
        data = json.loads(event["data"])
        assert data["sequence"] == int(event["id"]) and data["task_id"] == task_id
        assert event["event"] in (
            "status_update",
            "media_available",
            "tracking_update",
            "tracks_refined",
            "batch_processing_complete",
        )
    assert events[-1]["event"] == "status_update" and json.loads(events[-1]["data"])["state"] == "completed"

    resumed = await _read_all(live_client, task_id, **{"Last-Event-ID": str(ids[-4])})
    assert resumed == events[-3:]
    # Nothing after the end: 204, so EventSource stops reconnecting.
    done = await live_client.get(f"{BASE}/{task_id}/events", headers={"Last-Event-ID": str(ids[-1])})
    assert done.status_code == 204


async def test_heartbeats_while_idle(live_client, registered) -> None:
    task_id = await _start(live_client, await registered("sse-heartbeat"), paused=True)
    try:
        async with live_client.stream("GET", f"{BASE}/{task_id}/events") as response:
            async with asyncio.timeout(5):
                async for lines in _blocks(response):
                    if lines == [": heartbeat"]:
                        break
    finally:
        await live_client.post(f"{BASE}/{task_id}/control", json={"action": "cancel"})


async def test_a_resume_point_past_retention_is_410(live_client, registered, live_service) -> None:
    task_id = await _start(live_client, await registered("sse-expired"))
    await _finished(live_client, task_id)
    log = RedisEventLog.from_url(live_service.settings.redis_url, retention=3)  # trims to the last 3
    try:
        await log.append(task_id, BatchProcessingComplete(sub_video_batch_index=9))
    finally:
        await log.close()
    response = await live_client.get(f"{BASE}/{task_id}/events", headers={"Last-Event-ID": "1"})
    assert response.status_code == 410
    assert response.json()["grpc_status"] == "OUT_OF_RANGE" and "retention window" in response.json()["detail"]


async def test_the_last_client_going_away_cancels_the_shared_watch_at_once(
    live_facade_url, live_service, registered, admin_headers
) -> None:
    async with httpx.AsyncClient(base_url=live_facade_url, headers=admin_headers, timeout=30) as control:
        task_id = await _start(control, await registered("sse-disconnect"), paused=True)
        await _open_watches(live_service, 0)
        try:
            readers = []  # held, so no reader is finalised (which would close its response) early
            async with contextlib.AsyncExitStack() as stack:
                for _ in range(3):  # each subscriber its own connection, as browsers do
                    client = await stack.enter_async_context(
                        httpx.AsyncClient(base_url=live_facade_url, headers=admin_headers, timeout=30)
                    )
                    response = await stack.enter_async_context(client.stream("GET", f"{BASE}/{task_id}/events"))
                    assert response.status_code == 200
                    readers.append(_blocks(response))
                    assert (await _next_event(readers[-1]))[0] == "id: 1"  # receiving: the stream is up
                await _open_watches(live_service, 1)  # one WatchTask, shared by the three
            # All three connections are closed now; their shared WatchTask must follow within 2 s.
            await _open_watches(live_service, 0)
            # Health answers from its newest probe round (SPOTON_HEALTH_PROBE_INTERVAL_S): polled.
            async with asyncio.timeout(5):
                while True:
                    health = (await control.get("/health")).json()
                    watches = next(c for c in health["components"] if c["name"] == "watch_streams")
                    if (watches["status"], watches["detail"]) == ("healthy", "0 open"):
                        break
                    await asyncio.sleep(0.2)
        finally:
            await control.post(f"{BASE}/{task_id}/control", json={"action": "cancel"})
