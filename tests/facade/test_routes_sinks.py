"""Event sink routes over the real inference service: create, list, get, patch, deliveries and
delete, the secret never answered, and bad input as RFC 9457 problems."""

from __future__ import annotations

import uuid

import httpx

Client = httpx.AsyncClient
SECRET = "rest-sink-secret-" + uuid.uuid4().hex
# Not resolvable offline, so accepted at creation; no event of these environments is ever sent.
URL = "https://hooks.example.com/spoton"


async def test_sink_routes_never_answer_the_secret(live_client: Client, registered, expect_problem) -> None:
    environment_id = await registered("rest-sinks")
    body = {
        "name": "alerts",
        "kind": "webhook",
        "url": URL,
        "event_types": ["zone.entered", "zone.exited"],
        "secret": SECRET,
    }
    created = await live_client.post(f"/api/v1/environments/{environment_id}/sinks", json=body)
    assert created.status_code == 201, created.text
    sink = created.json()
    assert (sink["kind"], sink["url"], sink["has_secret"], sink["enabled"]) == ("webhook", URL, True, True)
    assert sink["event_types"] == ["zone.entered", "zone.exited"] and "secret" not in sink
    assert sink["status"]["pending"] == 0 and sink["status"]["last_delivered_at"] is None
    sink_id = sink["sink_id"]
    expect_problem(await live_client.post(f"/api/v1/environments/{environment_id}/sinks", json=body), 409)

    listed = await live_client.get(f"/api/v1/environments/{environment_id}/sinks")
    got = await live_client.get(f"/api/v1/sinks/{sink_id}")
    patched = await live_client.patch(
        f"/api/v1/sinks/{sink_id}", json={"enabled": False, "event_types": ["person.appeared"], "secret": SECRET * 2}
    )
    page = await live_client.get(f"/api/v1/sinks/{sink_id}/deliveries", params={"state": "pending", "page_size": 10})
    for response in (created, listed, got, patched, page):
        assert response.status_code == 200 or response is created, response.text
        assert SECRET not in response.text
    assert [s["sink_id"] for s in listed.json()["sinks"]] == [sink_id]
    assert patched.json()["enabled"] is False and patched.json()["event_types"] == ["person.appeared"]
    assert page.json() == {"deliveries": [], "next_page_token": ""}

    assert (await live_client.delete(f"/api/v1/sinks/{sink_id}")).status_code == 204
    expect_problem(await live_client.get(f"/api/v1/sinks/{sink_id}"), 404, "NOT_FOUND")


async def test_bad_sink_input_is_a_problem(live_client: Client, registered, expect_problem) -> None:
    environment_id = await registered("rest-sinks-bad")
    base = {"name": "hook", "kind": "webhook", "url": URL, "event_types": ["person.left"], "secret": SECRET}
    sinks = f"/api/v1/environments/{environment_id}/sinks"
    refused = await live_client.post(sinks, json={**base, "url": "mqtt://broker.example.com"})  # a webhook
    assert "http:// or https://" in expect_problem(refused, 400, "INVALID_ARGUMENT")["detail"]
    metadata = await live_client.post(sinks, json={**base, "url": "http://169.254.169.254/latest/meta-data"})
    assert "link-local" in expect_problem(metadata, 400, "INVALID_ARGUMENT")["detail"]
    short = await live_client.post(sinks, json={**base, "secret": "short"})
    assert "at least 16" in expect_problem(short, 400, "INVALID_ARGUMENT")["detail"]
    # Checked by the facade's contract before any call: the event types are an enumeration.
    expect_problem(await live_client.post(sinks, json={**base, "event_types": ["person.teleported"]}), 400)
    expect_problem(await live_client.post(sinks, json={**base, "surprise": 1}), 400)
    expect_problem(await live_client.post(sinks, json={**base, "url": "ftp://example.com/x"}), 400)
    expect_problem(await live_client.post(sinks, json={**base, "event_types": []}), 400)
    unknown = await live_client.post("/api/v1/environments/no-such-env/sinks", json=base)
    assert "no-such-env" in expect_problem(unknown, 404, "NOT_FOUND")["detail"]
    expect_problem(await live_client.get("/api/v1/sinks/not-a-uuid"), 400)
    expect_problem(await live_client.get(f"/api/v1/sinks/{uuid.uuid4()}/deliveries"), 404, "NOT_FOUND")
    expect_problem(await live_client.get(f"/api/v1/sinks/{uuid.uuid4()}/deliveries", params={"state": "lost"}), 400)
