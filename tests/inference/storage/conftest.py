"""Real PostgreSQL and Redis from the embedded wheels, one of each for this package's tests."""

from __future__ import annotations

import pytest_asyncio

from spoton_inference.embedded.postgres import EmbeddedPostgres
from spoton_inference.embedded.redis import EmbeddedRedis
from spoton_inference.settings import Settings


@pytest_asyncio.fixture(scope="package")
async def settings(tmp_path_factory):
    return Settings(data_dir=tmp_path_factory.mktemp("storage-data"))


@pytest_asyncio.fixture(scope="package")
async def postgres(settings):
    server = EmbeddedPostgres(settings)
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="package")
async def redis_server(settings):
    server = EmbeddedRedis(settings)
    await server.start()
    yield server
    await server.stop()
