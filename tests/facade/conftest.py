"""Fixtures for the facade tests: a temporary media root and an app with no inference service.

Nothing listens on the inference target, so every gRPC call fails fast with UNAVAILABLE; the
routes that need a real service are covered by the end-to-end integration tests.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

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
    async with AsyncTestClient(app) as test_client:
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
