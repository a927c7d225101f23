"""Two replicas' catalogues over one PostgreSQL and one Redis: a change made on one is seen by
the other, also after a Redis outage during which the announcement was lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from spoton_inference.files import environment_dir
from spoton_inference.services.catalog import Catalog, EnvironmentPatch, EnvironmentSpec
from spoton_inference.storage.camera_health_store import CameraHealthStore
from spoton_inference.storage.catalog_store import CatalogStore
from spoton_inference.storage.catalog_sync import CatalogSync
from spoton_inference.storage.environment_store import EnvironmentStore
from spoton_inference.storage.postgres import Database

pytestmark = pytest.mark.timeout(120)


async def until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _name(catalog: Catalog, environment_id: str) -> str | None:
    return next((e.name for e in catalog.list() if e.environment_id == environment_id), None)


async def test_a_change_on_one_replica_reaches_the_other(postgres, redis_server):
    db = await Database.connect(postgres.dsn)
    catalogs, syncs, clients = [], [], []
    for replica in ("replica-a", "replica-b"):
        catalog = Catalog(EnvironmentStore(db), CatalogStore(db), CameraHealthStore(db), environment_dir)
        await catalog.load()
        clients.append(aioredis.from_url(redis_server.url))
        sync = CatalogSync(clients[-1], replica)
        catalog.on_change = sync.changed
        sync.start(catalog.reload)
        catalogs.append(catalog)
        syncs.append(sync)
    a, b = catalogs
    try:
        await asyncio.wait_for(asyncio.gather(*(s.subscribed.wait() for s in syncs)), 10)
        await a.create_environment(EnvironmentSpec("synced", name="Before"))
        await until(lambda: _name(b, "synced") == "Before")
        await a.update_environment("synced", EnvironmentPatch(name="After"))
        await until(lambda: _name(b, "synced") == "After")
        assert syncs[0].reloads == 0  # a replica does not reload for its own changes

        # Redis goes away: the announcement of this change is lost, and B catches up on its
        # own once it is subscribed again.
        await redis_server.stop()
        try:
            await a.update_environment("synced", EnvironmentPatch(name="While Redis was away"))
        finally:
            await redis_server.start()
        await until(lambda: _name(b, "synced") == "While Redis was away")

        await b.delete_environment("synced")
        await until(lambda: _name(a, "synced") is None)
    finally:
        for sync, client in zip(syncs, clients, strict=True):
            await sync.close()
            await client.aclose()
        await db.close()
