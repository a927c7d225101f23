"""Real PostgreSQL and Redis from the embedded wheels, one of each for this package's tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest
import pytest_asyncio

from spoton_inference.embedded.postgres import EmbeddedPostgres
from spoton_inference.embedded.redis import EmbeddedRedis
from spoton_inference.settings import Settings


@pytest_asyncio.fixture(scope="package")
async def settings(make_data_dir):
    return Settings(data_dir=make_data_dir("storage"))


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


@pytest_asyncio.fixture(scope="package")
async def stoppable_postgres(make_data_dir):
    """A PostgreSQL of its own that outage tests stop and start again (same data, same port);
    a test that stops it starts it again before it ends."""
    server = EmbeddedPostgres(Settings(data_dir=make_data_dir("storage-outage")))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="package")
def postgres_down(stoppable_postgres) -> Callable[[], AbstractAsyncContextManager[None]]:
    """``async with postgres_down():`` stoppable_postgres stopped for the block; started again
    (same DSN) however the block ends."""

    @contextlib.asynccontextmanager
    async def down() -> AsyncIterator[None]:
        await stoppable_postgres.stop()
        try:
            yield
        finally:
            await stoppable_postgres.start()

    return down
