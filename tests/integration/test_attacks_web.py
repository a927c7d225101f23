"""Regression for the cross-site write (issue 16): a page on another site made the browser of a
dashboard user start tasks and import cameras, with ``Content-Type: text/plain`` (a "simple"
request, sent without CORS asking first) or a multipart form, riding the user's session.

Each attack is replayed as the browser would send it, over the real facade and service, and
the service's own state is read afterwards: nothing was started or imported. The same requests
from this site's own pages (or with a header credential, which no other site can make a
browser send) still work, so the defence is not simply "refuse everything".
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from support.auth import ADMIN_API_KEY, admin_headers, make_user

from spoton_facade.settings import FacadeSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EVIL = "https://evil.example"
PASSWORD = "correct horse battery"
START = "/api/v1/processing-tasks/start"
CSV = b"camera_id,fps,source_kind,source_url,enabled\nplanted,10,rtsp,rtsp://198.51.100.7/x,true\n"


@pytest_asyncio.fixture
async def facade(live_service, serve_facade) -> AsyncIterator[str]:
    settings = FacadeSettings(inference_target=live_service.target, media_root=live_service.settings.media_root)
    async with serve_facade(settings) as url:
        yield url


@pytest_asyncio.fixture
async def environment_id(live_service) -> str:
    path = live_service.make_environment(f"attack-{uuid.uuid4().hex[:8]}")
    return (await live_service.app.catalog.register_directory(str(path))).environment_id


@pytest_asyncio.fixture
async def victim(live_service, facade: str) -> AsyncIterator[httpx.AsyncClient]:
    """The dashboard user's browser: logged in (an admin, who may do anything), holding the cookie."""
    username = f"victim-{uuid.uuid4().hex[:8]}"
    await make_user(live_service.target, username, PASSWORD, "admin")
    async with httpx.AsyncClient(base_url=facade, timeout=30) as browser:
        login = await browser.post(
            "/api/v1/auth/login", json={"username": username, "password": PASSWORD}, headers={"Origin": facade}
        )
        assert login.status_code == 200, login.text
        yield browser


@pytest_asyncio.fixture
async def admin(facade: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=facade, headers=dict(admin_headers()), timeout=30) as http:
        yield http


async def _tasks(admin: httpx.AsyncClient, environment_id: str) -> list[str]:
    listed = await admin.get("/api/v1/processing-tasks", params={"environment_id": environment_id})
    assert listed.status_code == 200, listed.text
    return [t["task_id"] for t in listed.json()["tasks"]]


async def _cameras(admin: httpx.AsyncClient, environment_id: str) -> list[str]:
    listed = await admin.get(f"/api/v1/environments/{environment_id}/cameras")
    assert listed.status_code == 200, listed.text
    return [c["camera_id"] for c in listed.json()["cameras"]]


def _problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_text_plain_task_start_is_refused_and_starts_nothing(
    victim: httpx.AsyncClient, admin: httpx.AsyncClient, facade: str, environment_id: str
) -> None:
    body = f'{{"environment_id":"{environment_id}"}}'
    # The original attack, with any credential: a JSON route takes only application/json.
    for client, origin in ((victim, facade), (victim, EVIL), (admin, EVIL)):
        response = await client.post(START, content=body, headers={"Content-Type": "text/plain", "Origin": origin})
        _problem(response, 403 if (client is victim and origin == EVIL) else 415)
    plain = await admin.post(START, content=body, headers={"Content-Type": "text/plain"})
    _problem(plain, 415)
    assert await _tasks(admin, environment_id) == []


async def test_a_cookie_authorised_write_from_another_origin_is_refused(
    victim: httpx.AsyncClient, admin: httpx.AsyncClient, facade: str, environment_id: str
) -> None:
    # Three starts below go through: beside each other, as asked.
    body = {"environment_id": environment_id, "allow_concurrent": True}
    _problem(await victim.post(START, json=body, headers={"Origin": EVIL}), 403)
    _problem(await victim.post(START, json=body, headers={"Origin": "null"}), 403)  # a sandboxed frame
    _problem(await victim.post(START, json=body, headers={"Referer": f"{EVIL}/page"}), 403)
    _problem(await victim.post(START, json=body), 403)  # says nowhere where it comes from
    assert await _tasks(admin, environment_id) == []

    # This site's own page may; so may a header credential from anywhere (no browser sends
    # one cross-site unless CORS allows it, and it is closed).
    own = await victim.post(START, json=body, headers={"Origin": facade})
    assert own.status_code == 202, own.text
    assert (await victim.post(START, json=body, headers={"Referer": f"{facade}/?task=x"})).status_code == 202
    keyed = await admin.post(START, json=body, headers={"Origin": EVIL})
    assert keyed.status_code == 202, keyed.text
    started = await _tasks(admin, environment_id)
    assert len(started) == 3
    for task_id in started:
        await admin.post(f"/api/v1/processing-tasks/{task_id}/control", json={"action": "cancel"})


async def test_a_cross_site_camera_import_imports_nothing(
    victim: httpx.AsyncClient, admin: httpx.AsyncClient, facade: str, environment_id: str
) -> None:
    url = f"/api/v1/environments/{environment_id}/cameras/import"
    before = await _cameras(admin, environment_id)
    # A cross-site HTML form can post multipart/form-data or text/plain with no CORS check.
    form = await victim.post(url, files={"file": ("cams.csv", CSV, "text/csv")}, headers={"Origin": EVIL})
    _problem(form, 403)
    raw = await victim.post(
        url, params={"format": "csv"}, content=CSV, headers={"Content-Type": "text/plain", "Origin": EVIL}
    )
    _problem(raw, 403)
    _problem(await victim.post(url, files={"file": ("cams.csv", CSV, "text/csv")}), 403)  # no Origin
    assert await _cameras(admin, environment_id) == before

    own = await victim.post(url, files={"file": ("cams.csv", CSV, "text/csv")}, headers={"Origin": facade})
    assert own.status_code == 200, own.text
    assert "planted" in await _cameras(admin, environment_id)


async def test_cors_lets_no_other_origin_read_or_write(admin: httpx.AsyncClient, environment_id: str) -> None:
    preflight = await admin.options(
        START,
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    read = await admin.get("/api/v1/environments", headers={"Origin": EVIL})
    assert "access-control-allow-origin" not in read.headers
    assert ADMIN_API_KEY not in read.text
