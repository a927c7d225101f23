"""Who may call the facade, over real HTTP and the real inference service: every route asks for
a credential (listed from the OpenAPI document, so a new route cannot slip through), the
session cookie works where headers cannot be set (SSE, media), roles hold, and the admin
routes over AuthService round-trip without ever answering a secret twice."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from spoton_facade.security import CONTENT_SECURITY_POLICY, SESSION_COOKIE
from spoton_inference.services.auth import parse_api_key

BASE = "/api/v1/processing-tasks"
FINAL = ("completed", "failed", "cancelled")
# What answers with no credential: the health probe, the dashboard's two pages, login and
# logout. Anything else the OpenAPI document lists must be 401 without a credential.
OPEN_OPERATIONS = {
    ("get", "/health"),
    ("get", "/"),
    ("get", "/login"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
}
PASSWORD = "correct horse battery"


async def _document(client: httpx.AsyncClient) -> dict:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


async def _user(admin: httpx.AsyncClient, role: str, environments: list[str] | None = None) -> str:
    username = f"{role}-{uuid.uuid4().hex[:8]}"
    body = {"username": username, "password": PASSWORD, "role": role, "environment_ids": environments or []}
    created = await admin.post("/api/v1/auth/users", json=body)
    assert created.status_code == 201, created.text
    return username


async def _key(admin: httpx.AsyncClient, role: str, environments: list[str] | None = None) -> dict:
    body = {"name": f"test {role}", "role": role, "environment_ids": environments or []}
    created = await admin.post("/api/v1/auth/api-keys", json=body)
    assert created.status_code == 201, created.text
    return created.json()


@pytest.fixture
async def browser(live_facade_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client that behaves as this site's pages do: no credential header, its own Origin."""
    async with httpx.AsyncClient(base_url=live_facade_url, headers={"Origin": live_facade_url}, timeout=30) as http:
        yield http


async def _login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"username": username, "password": password})


async def test_every_route_but_the_open_ones_answers_401_without_a_credential(
    anonymous_client: httpx.AsyncClient, expect_problem
) -> None:
    document = await _document(anonymous_client)
    opened, checked = set(), 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if operation.get("security") == []:
                opened.add((method, path))
                continue
            assert {"401", "403"} <= operation["responses"].keys(), (method, path)
            url = re.sub(r"\{[^}]+\}", "1", path)
            kwargs = {"json": {}} if "requestBody" in operation else {}
            response = await anonymous_client.request(method.upper(), url, **kwargs)
            expect_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer"), (method, path)
            checked += 1
    assert opened == OPEN_OPERATIONS
    assert checked >= 40  # every route the facade has, not a lucky few
    assert {"bearer", "apiKey", "session"} <= document["components"]["securitySchemes"].keys()
    assert document["security"]


async def test_a_credential_the_service_refuses_is_401(anonymous_client: httpx.AsyncClient, expect_problem) -> None:
    for headers in ({"Authorization": "Bearer spk_nope_nope"}, {"X-API-Key": "garbage"}):
        response = await anonymous_client.get("/api/v1/environments", headers=headers)
        expect_problem(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"].startswith("Bearer")
    for headers in ({"Authorization": "Basic dXNlcjpwYXNz"}, {"X-API-Key": b"spk_\xe9"}):  # not a key at all
        response = await anonymous_client.get("/api/v1/environments", headers=headers)
        expect_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    anonymous_client.cookies.set(SESSION_COOKIE, "not-a-token")
    expect_problem(await anonymous_client.get("/api/v1/environments"), 401, "UNAUTHENTICATED")


async def test_login_me_and_logout(live_client: httpx.AsyncClient, browser: httpx.AsyncClient, expect_problem) -> None:
    username = await _user(live_client, "viewer")
    expect_problem(await _login(browser, username, "wrong password"), 401)
    assert SESSION_COOKIE not in browser.cookies

    response = await _login(browser, username)
    assert response.status_code == 200, response.text
    session = response.json()
    assert (session["subject"], session["role"], session["environment_ids"]) == (username, "viewer", [])
    assert "token" not in response.text.lower()  # the token is in the cookie only
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age", "samesite"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/" in cookie.lower()
    assert "secure" not in attributes  # plain http here; https gets Secure
    max_age = int(re.search(r"max-age=(\d+)", cookie, re.IGNORECASE).group(1))
    assert 0 < max_age <= 3600

    me = await browser.get("/api/v1/auth/me")
    assert me.status_code == 200, me.text
    assert (me.json()["subject"], me.json()["role"], me.json()["kind"]) == (username, "viewer", "token")

    out = await browser.post("/api/v1/auth/logout")
    assert out.status_code == 204
    assert SESSION_COOKIE not in browser.cookies
    expect_problem(await browser.get("/api/v1/auth/me"), 401)


async def test_roles_hold_through_the_facade(
    live_client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, registered, expect_problem
) -> None:
    environment_id = await registered(f"auth-roles-{uuid.uuid4().hex[:6]}")
    viewer = {"X-API-Key": (await _key(live_client, "viewer"))["secret"]}
    operator = {"Authorization": f"Bearer {(await _key(live_client, 'operator'))['secret']}"}

    assert (await anonymous_client.get(f"{BASE}", headers=viewer)).status_code == 200
    refused = await anonymous_client.post(f"{BASE}/start", json={"environment_id": environment_id}, headers=viewer)
    expect_problem(refused, 403, "PERMISSION_DENIED")
    started = await anonymous_client.post(f"{BASE}/start", json={"environment_id": environment_id}, headers=operator)
    assert started.status_code == 202, started.text
    await anonymous_client.post(
        f"{BASE}/{started.json()['task_id']}/control", json={"action": "cancel"}, headers=operator
    )
    # Keys, users and the audit log are the admin's.
    expect_problem(await anonymous_client.get("/api/v1/auth/api-keys", headers=operator), 403, "PERMISSION_DENIED")
    expect_problem(await anonymous_client.get("/api/v1/audit-events", headers=viewer), 403, "PERMISSION_DENIED")


async def test_api_keys_users_and_the_audit_log(
    live_client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, expect_problem
) -> None:
    created = await _key(live_client, "viewer")
    secret, key = created["secret"], created["api_key"]
    assert secret.startswith("spk_") and key["role"] == "viewer" and key["revoked_at"] is None
    assert (await anonymous_client.get("/api/v1/environments", headers={"X-API-Key": secret})).status_code == 200

    listed = await live_client.get("/api/v1/auth/api-keys")
    assert listed.status_code == 200
    assert key["key_id"] in [k["key_id"] for k in listed.json()["api_keys"]]
    # The secret part of `spk_<id>_<secret>` (both parts may hold "_" themselves).
    secret_part = parse_api_key(secret)[1]
    assert secret not in listed.text and secret_part not in listed.text

    assert (await live_client.delete(f"/api/v1/auth/api-keys/{key['key_id']}")).status_code == 204
    revoked = await anonymous_client.get("/api/v1/environments", headers={"X-API-Key": secret})
    expect_problem(revoked, 401, "UNAUTHENTICATED")

    username = await _user(live_client, "operator")
    users = await live_client.get("/api/v1/auth/users")
    assert [u["role"] for u in users.json()["users"] if u["username"] == username] == ["operator"]
    assert PASSWORD not in users.text
    assert (await live_client.delete(f"/api/v1/auth/users/{username}")).status_code == 204
    assert username not in (await live_client.get("/api/v1/auth/users")).text

    audit = await live_client.get("/api/v1/audit-events", params={"page_size": 100})
    assert audit.status_code == 200, audit.text
    assert audit.json()["events"], "creating and revoking keys is audited"
    assert secret not in audit.text and PASSWORD not in audit.text


async def _finished(client: httpx.AsyncClient, task_id: str) -> None:
    async with asyncio.timeout(60):
        while True:  # polling the route is the point: no event to wait on
            if (await client.get(f"{BASE}/{task_id}/status")).json()["state"] in FINAL:
                return
            await asyncio.sleep(0.1)


async def test_the_session_cookie_serves_sse_and_media(
    live_client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    anonymous_client: httpx.AsyncClient,
    live_service,
    registered: Callable[[str], Awaitable[str]],
    expect_problem,
) -> None:
    environment_id = await registered(f"auth-cookie-{uuid.uuid4().hex[:6]}")
    assert (await _login(browser, await _user(live_client, "operator"))).status_code == 200

    # What a page of this site sends: the cookie and its own Origin.
    started = await browser.post(f"{BASE}/start", json={"environment_id": environment_id})
    assert started.status_code == 202, started.text
    task_id = started.json()["task_id"]
    await _finished(browser, task_id)
    async with browser.stream("GET", started.json()["events_url"]) as events:
        assert events.status_code == 200
        assert events.headers["content-type"].startswith("text/event-stream")
        assert "event: " in "".join([line async for line in events.aiter_lines()])

    media = Path(live_service.settings.media_root) / "tasks" / task_id / "exports" / "auth-check.txt"
    media.parent.mkdir(parents=True, exist_ok=True)
    media.write_bytes(b"only for those who may see the task")
    url = f"/api/v1/media/tasks/{task_id}/exports/auth-check.txt"
    assert (await browser.get(url)).content == b"only for those who may see the task"
    expect_problem(await anonymous_client.get(url), 401)
    # A key limited to another environment does not see the task's files.
    elsewhere = await registered(f"auth-elsewhere-{uuid.uuid4().hex[:6]}")
    scoped = (await _key(live_client, "viewer", [elsewhere]))["secret"]
    assert (await anonymous_client.get(url, headers={"X-API-Key": scoped})).status_code in (403, 404)


async def test_health_stays_open_and_says_less_without_a_credential(
    anonymous_client: httpx.AsyncClient, live_client: httpx.AsyncClient
) -> None:
    anonymous = await anonymous_client.get("/health")
    assert anonymous.status_code == 200, anonymous.text
    assert [c["name"] for c in anonymous.json()["components"]] == ["inference"]
    detailed = await live_client.get("/health")
    assert detailed.status_code == 200 and len(detailed.json()["components"]) > 1


async def test_the_dashboard_and_login_page_send_the_security_headers(anonymous_client: httpx.AsyncClient) -> None:
    for url in ("/", "/login", "/static/dashboard.js", "/static/login.js", "/api/v1/environments"):
        response = await anonymous_client.get(url)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, url
        assert response.headers["x-frame-options"] == "DENY", url
        assert response.headers["x-content-type-options"] == "nosniff", url
        assert response.headers["referrer-policy"] == "same-origin", url
    # The policy allows no inline code: the pages hold none.
    for url in ("/", "/login"):
        page = (await anonymous_client.get(url)).text
        assert "<style" not in page and " style=" not in page and not re.search(r"<script(?![^>]*\ssrc=)", page)
        assert "http://" not in page and "https://" not in page  # no CDN
    # CORS stays closed: no other origin is let in.
    preflight = await anonymous_client.options(
        "/api/v1/environments",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    # OPTIONS needs no credential (preflights never carry one): it says only what the path allows.
    assert preflight.status_code == 204 and "GET" in preflight.headers["allow"]
