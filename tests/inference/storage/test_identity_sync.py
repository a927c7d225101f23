import uuid

import numpy as np
import pytest

from spoton_inference.embedded.redis import EmbeddedRedis
from spoton_inference.settings import Settings
from spoton_inference.storage.embedding_store import EmbeddingRow, EmbeddingStore
from spoton_inference.storage.gallery import GalleryEntry, RedisGallery
from spoton_inference.storage.identity_sync import IdentitySync
from spoton_inference.storage.migrate import migrate
from spoton_inference.storage.postgres import Database


@pytest.fixture
async def db(postgres):
    database = await Database.connect(postgres.dsn)
    async with database.pool.acquire() as conn:
        await migrate(conn)
    yield database
    await database.close()


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(16).astype(np.float32)
    return v / np.linalg.norm(v)


def _entry(gid: int, last_seen: float) -> GalleryEntry:
    return GalleryEntry(gid, _unit(gid), (1.0, 2.0), "c1", last_seen)


def _row(env: str, gid: int, frame: int) -> EmbeddingRow:
    return EmbeddingRow(uuid.uuid4(), env, "c1", gid, frame, _unit(gid))


async def test_newest_state_per_identity_reaches_redis_and_every_row_postgres(redis_server, db):
    gallery = RedisGallery.from_url(redis_server.url, max_size=100, max_age_s=600)
    sync = IdentitySync(gallery, EmbeddingStore(db))
    scope, env = f"task-{uuid.uuid4().hex[:8]}", f"env-{uuid.uuid4().hex[:8]}"
    sync.offer(scope, [_entry(1, 10.0), _entry(2, 10.0)], [_row(env, 1, 0), _row(env, 2, 0)])
    sync.offer(scope, [_entry(1, 11.0)], [_row(env, 1, 10)])  # coalesced with the first offer
    await sync.flush()
    assert [(e.global_id, e.last_seen) for e in await gallery.load(scope)] == [(1, 11.0), (2, 10.0)]
    async with db.pool.acquire() as conn:
        n = await conn.fetchval("SELECT count(*) FROM identity_embeddings WHERE environment_id = $1", env)
    assert n == 3
    assert (sync.counters.gallery_entries_written, sync.counters.embeddings_written) == (2, 3)
    await gallery.close()


async def test_a_redis_outage_is_counted_and_the_entries_are_written_once_it_is_back(make_data_dir):
    server = EmbeddedRedis(Settings(data_dir=make_data_dir("identity-sync-redis")))
    await server.start()
    gallery = RedisGallery.from_url(server.url, max_size=100, max_age_s=600)
    sync = IdentitySync(gallery, None)
    try:
        await server.stop()
        sync.offer("s", [_entry(1, 1.0)], [])
        await sync.flush()  # must not raise: tracking goes on without Redis
        assert sync.counters.failures == 1
        await server.start()  # same port
        await sync.flush()
        assert [e.global_id for e in await gallery.load("s")] == [1]
    finally:
        await gallery.close()
        await server.stop()


def test_pending_embedding_rows_are_bounded_oldest_first():
    sync = IdentitySync(None, None, max_pending_embeddings=3)
    sync.offer("s", [], [_row("e", 1, f) for f in range(5)])
    assert [r.global_frame_index for r in sync._rows] == [2, 3, 4]
    assert sync.counters.embeddings_dropped == 2
