"""Task routes over the real inference service: control (pause, resume, focus, cancel), status and
the filtered, paged listing."""

from __future__ import annotations

import uuid

import httpx
import pytest

Client = httpx.AsyncClient
BASE = "/api/v1/processing-tasks"


async def _start(client: Client, environment_id: str, **extra: object) -> str:
    response = await client.post(f"{BASE}/start", json={"environment_id": environment_id, **extra})
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


async def _control(client: Client, task_id: str, action: str, **extra: object) -> httpx.Response:
    return await client.post(f"{BASE}/{task_id}/control", json={"action": action, **extra})


def _conflict(response: httpx.Response, words: str) -> None:
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["grpc_status"] == "FAILED_PRECONDITION" and words in body["detail"]


async def test_control_a_task(live_client: Client, registered) -> None:
    task_id = await _start(live_client, await registered("rest-control"))
    paused = await _control(live_client, task_id, "pause")
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    _conflict(await _control(live_client, task_id, "pause"), "already paused")

    focused = await _control(live_client, task_id, "focus", global_id=5)
    assert focused.json()["focus_global_id"] == 5
    status = (await live_client.get(f"{BASE}/{task_id}/status")).json()
    assert (status["state"], status["focus_global_id"]) == ("paused", 5)

    resumed = await _control(live_client, task_id, "resume")
    assert resumed.status_code == 200 and resumed.json()["state"] != "paused"
    _conflict(await _control(live_client, task_id, "resume"), "not paused")

    cancelled = await _control(live_client, task_id, "cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] in ("cancelled", "completed")
    _conflict(await _control(live_client, task_id, "pause"), "only an unfinished task")


@pytest.mark.parametrize(
    ("task_id", "body", "status"),
    [
        (str(uuid.uuid4()), {"action": "pause"}, 404),
        ("not-a-uuid", {"action": "pause"}, 400),
        (str(uuid.uuid4()), {"action": "explode"}, 400),
        (str(uuid.uuid4()), {}, 400),
    ],
)
async def test_bad_controls(live_client: Client, task_id: str, body: dict, status: int) -> None:
    response = await live_client.post(f"{BASE}/{task_id}/control", json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


async def test_list_filters_and_pages(live_client: Client, registered) -> None:
    environment_id = await registered("rest-listing")
    started = [await _start(live_client, environment_id, allow_concurrent=True) for _ in range(3)]
    for task_id in started:
        assert (await _control(live_client, task_id, "cancel")).json()["state"] in ("cancelled", "completed")

    seen, token = [], ""
    while True:
        params = {"environment_id": environment_id, "page_size": 2, "page_token": token}
        page = (await live_client.get(BASE, params=params)).json()
        assert len(page["tasks"]) <= 2
        seen += [t["task_id"] for t in page["tasks"]]
        if not (token := page["next_page_token"]):
            break
    assert seen == started[::-1]  # newest first, each once

    cancelled = (await live_client.get(BASE, params={"environment_id": environment_id, "state": "cancelled"})).json()
    assert {t["task_id"] for t in cancelled["tasks"]} <= set(started)
    assert all(t["state"] == "cancelled" for t in cancelled["tasks"])
    bad = await live_client.get(BASE, params={"page_token": "forged"})
    assert bad.status_code == 400 and bad.json()["grpc_status"] == "INVALID_ARGUMENT"


async def test_a_second_start_is_a_conflict_naming_the_running_task(live_client: Client, registered) -> None:
    environment_id = await registered("rest-one-running")
    first = await _start(live_client, environment_id)
    await _control(live_client, first, "pause")  # unfinished for as long as the test needs
    refused = await live_client.post(f"{BASE}/start", json={"environment_id": environment_id})
    _conflict(refused, first)
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["task_id"] == first
    tasks = (await live_client.get(BASE, params={"environment_id": environment_id})).json()["tasks"]
    assert [t["task_id"] for t in tasks] == [first]  # the refused start left nothing

    beside = await _start(live_client, environment_id, allow_concurrent=True)
    assert beside != first
    for task_id in (first, beside):
        await _control(live_client, task_id, "cancel")
    again = await _start(live_client, environment_id)  # nothing unfinished: a start goes through
    await _control(live_client, again, "cancel")
