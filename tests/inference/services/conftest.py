"""Real PostgreSQL for the core tests that go through storage (analytics)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest_asyncio

from spoton_inference.embedded.postgres import EmbeddedPostgres
from spoton_inference.settings import Settings
from spoton_inference.storage.postgres import Database


@pytest_asyncio.fixture(scope="package")
async def postgres(make_data_dir):
    server = EmbeddedPostgres(Settings(data_dir=make_data_dir("core")))
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module")
async def db(postgres):
    """A fresh, migrated database for each test module."""
    name = f"core_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.dsn_for("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    database = await Database.connect(postgres.dsn_for(name))
    yield database
    await database.close()
