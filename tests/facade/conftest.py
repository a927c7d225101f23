"""Fixtures for the facade tests: a temporary media root and an app with no inference service.

Nothing listens on the inference target of ``app``/``client``, so every gRPC call fails fast
with UNAVAILABLE. The ``live_*`` fixtures put the facade over the real inference service
(``live_service``) instead, for the routes' round trips; ``live_client`` is the admin
(``admin_headers``), ``anonymous_client`` has no credential.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.auth import ADMIN_API_KEY

from spoton_facade import create_app
from spoton_facade.settings import FacadeSettings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    return root


@pytest.fixture
def settings(media_root: Path) -> FacadeSettings:
    return FacadeSettings(media_root=media_root, inference_target=f"127.0.0.1:{_closed_port()}")


@pytest.fixture
def app(settings: FacadeSettings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client that sends the admin's key (which no service checks here: there is none)."""
    async with AsyncTestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {ADMIN_API_KEY}"
        yield test_client


@pytest.fixture
def write_media(media_root: Path) -> Callable[[str, bytes], Path]:
    """Write ``data`` at ``relative`` under the media root and return its path."""

    def write(relative: str, data: bytes) -> Path:
        path = media_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return write


@pytest.fixture(scope="session")
def expect_problem() -> Callable[..., dict]:
    """``body = expect_problem(response, status, grpc_status=None)``: assert ``response`` is an
    RFC 9457 problem with that status (and gRPC status, when given); returns its body."""

    def expect(response: httpx.Response, status: int, grpc_status: str | None = None) -> dict:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == status, body
        if grpc_status is not None:
            assert body["grpc_status"] == grpc_status, body
        return body

    return expect


# -- the facade over the real inference service (``live_service`` in tests/conftest.py) -------


@pytest.fixture
def live_settings(live_service) -> FacadeSettings:
    return FacadeSettings(
        inference_target=live_service.target,
        media_root=live_service.settings.media_root,
        sse_heartbeat_seconds=0.2,
    )


@pytest.fixture
async def live_facade_url(live_settings: FacadeSettings, serve_facade) -> AsyncIterator[str]:
    """The facade under a real uvicorn on loopback (``serve_facade`` in tests/conftest.py)."""
    async with serve_facade(live_settings) as url:
        yield url


@pytest.fixture(scope="session")
def admin_headers() -> dict[str, str]:
    """The header that authenticates a request as the test stacks' bootstrap admin."""
    return {"Authorization": f"Bearer {ADMIN_API_KEY}"}


@pytest.fixture
async def live_client(live_facade_url: str, admin_headers: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the live facade, authenticated as the admin."""
    async with httpx.AsyncClient(base_url=live_facade_url, headers=admin_headers, timeout=30) as http:
        yield http


@pytest.fixture
async def anonymous_client(live_facade_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the live facade with no credential."""
    async with httpx.AsyncClient(base_url=live_facade_url, timeout=30) as http:
        yield http


@pytest.fixture
async def registered(live_service) -> Callable[[str], Awaitable[str]]:
    """Register a tiny two-camera environment directory; returns its id."""

    async def register(environment_id: str) -> str:
        path = live_service.make_environment(environment_id)
        return (await live_service.app.catalog.register_directory(str(path))).environment_id

    return register
