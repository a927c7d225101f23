import asyncio
import uuid

import asyncpg
import numpy as np
import pytest

from spoton_inference.storage.embedding_store import (
    EmbeddingRow,
    EmbeddingStore,
    _nearest_sql,
    _vector_text,
    index_name,
)
from spoton_inference.storage.migrate import migrate
from spoton_inference.storage.postgres import Database


@pytest.fixture
async def db(postgres):
    database = await Database.connect(postgres.dsn)
    yield database
    await database.close()


@pytest.fixture
def env() -> str:
    return f"env-{uuid.uuid4().hex[:8]}"


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def _random_unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    return _unit(rng.standard_normal(dim))


def _near(base: np.ndarray, angle: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at ``angle`` radians from ``base``."""
    noise = rng.standard_normal(base.shape[0]).astype(np.float32)
    noise = _unit(noise - (noise @ base) * base)
    return _unit(np.cos(angle) * base + np.sin(angle) * noise)


def _row(env: str, gid: int, emb: np.ndarray, *, task: uuid.UUID | None = None, frame: int = 0) -> EmbeddingRow:
    return EmbeddingRow(task or uuid.uuid4(), env, f"c{gid}", gid, frame, emb)


async def _stored(db: Database, env: str) -> list:
    async with db.pool.acquire() as conn:
        return await conn.fetch(
            """SELECT task_id, camera_id, global_id, global_frame_index, created_at,
                      embedding::real[] AS emb, vector_dims(embedding) AS dims
               FROM identity_embeddings WHERE environment_id = $1 ORDER BY id""",
            env,
        )


async def test_rows_round_trip_exactly(db, env):
    rng = np.random.default_rng(1)
    task = uuid.uuid4()
    rows = [
        EmbeddingRow(task, env, "cam-é", 3, 2**31 - 1, _random_unit(rng, 1280)),
        EmbeddingRow(str(task), env, "c2", 4, 0, _random_unit(rng, 1280)),
    ]
    await EmbeddingStore(db).write(rows)
    stored = await _stored(db, env)
    assert [(r["task_id"], r["camera_id"], r["global_id"], r["global_frame_index"]) for r in stored] == [
        (task, "cam-é", 3, 2**31 - 1),
        (task, "c2", 4, 0),
    ]
    for got, want in zip(stored, rows, strict=True):
        assert np.asarray(got["emb"], dtype=np.float32).tobytes() == want.embedding.tobytes()
        assert got["created_at"] is not None


async def test_two_dimensions_coexist_each_with_its_own_index(db, env):
    rng = np.random.default_rng(2)
    store = EmbeddingStore(db)
    big, small = _random_unit(rng, 1280), _random_unit(rng, 8)
    await store.write([_row(env, 1, big), _row(env, 2, small)])  # one batch, two dimensions
    assert sorted(r["dims"] for r in await _stored(db, env)) == [8, 1280]
    async with db.pool.acquire() as conn:
        names = {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes")}
    assert {index_name(8), index_name(1280)} <= names
    # A search only compares vectors of its own dimension.
    assert [g for g, _ in await store.nearest(env, small)] == [2]
    assert [g for g, _ in await store.nearest(env, big)] == [1]


async def test_bad_embeddings_reject_the_whole_batch(db, env):
    store = EmbeddingStore(db)
    good = _row(env, 1, np.ones(4, np.float32))
    for bad in (np.zeros(0), np.ones((2, 4)), np.ones(4001), np.array([1.0, np.nan])):
        with pytest.raises(ValueError, match="embedding"):
            await store.write([good, _row(env, 2, bad)])
    with pytest.raises(ValueError, match="embedding"):
        await store.nearest(env, np.ones(4001))
    with pytest.raises(ValueError, match="limit"):
        await store.nearest(env, np.ones(4), limit=0)
    assert await _stored(db, env) == []


async def test_nearest_orders_distinct_identities_by_cosine_distance(db, env):
    rng = np.random.default_rng(3)
    dim = 64
    query = _random_unit(rng, dim)
    # Identity 10 is closest, then 20, then 30; each has several stored embeddings.
    angles = {10: [0.15, 0.6, 1.2], 20: [0.4, 0.9], 30: [0.8, 1.0, 1.4, 1.5], 40: [2.5]}
    rows = [_row(env, gid, _near(query, a, rng), frame=i) for gid, ang in angles.items() for i, a in enumerate(ang)]
    rows += [_row(env, 50, _random_unit(rng, dim)) for _ in range(200)]  # unrelated people
    other_env = env + "-other"
    await EmbeddingStore(db).write([*rows, _row(other_env, 99, query)])  # exact match, wrong environment
    store = EmbeddingStore(db)

    got = await store.nearest(env, query, limit=3)
    assert [g for g, _ in got] == [10, 20, 30]
    q = query.astype(np.float64)
    for gid, distance in got:
        exact = min(1 - q @ r.embedding.astype(np.float64) for r in rows if r.global_id == gid)
        assert distance == pytest.approx(exact, abs=1e-6)
    assert [g for g, _ in await store.nearest(env, query, limit=1)] == [10]
    assert (await store.nearest(other_env, query))[0] == (99, pytest.approx(0.0, abs=1e-6))
    assert await store.nearest("no-such-environment", query) == []


async def test_the_search_through_the_hnsw_index_finds_the_nearest(db, postgres, env):
    rng = np.random.default_rng(4)
    vectors = [_random_unit(rng, 16) for _ in range(300)]
    await EmbeddingStore(db).write([_row(env, i, v) for i, v in enumerate(vectors)])
    # Small tables favour a scan and sort; rule those out so the HNSW path is what runs.
    pool = await asyncpg.create_pool(
        postgres.dsn, min_size=1, max_size=1, server_settings={"enable_seqscan": "off", "enable_bitmapscan": "off"}
    )
    try:
        async with pool.acquire() as conn:
            await conn.execute("ANALYZE identity_embeddings")
            query = _random_unit(rng, 16)
            plan = "\n".join(
                r[0] for r in await conn.fetch("EXPLAIN " + _nearest_sql(16), env, _vector_text(query), 40, 5)
            )
        assert index_name(16) in plan
        got = await EmbeddingStore(Database(pool)).nearest(env, query, limit=5)
    finally:
        await pool.close()
    exact = sorted((1 - float(query.astype(np.float64) @ v.astype(np.float64)), i) for i, v in enumerate(vectors))[:5]
    assert [g for g, _ in got] == [i for _, i in exact]
    assert [d for _, d in got] == pytest.approx([d for d, _ in exact], abs=1e-6)


async def test_migrations_and_index_creation_are_idempotent(db, postgres):
    async with db.pool.acquire() as conn:
        assert await migrate(conn) == []
        assert await conn.fetchval("SELECT to_regclass('identity_embeddings') IS NOT NULL")
    # Two replicas creating the same index at once, then again with fresh caches.
    await asyncio.gather(EmbeddingStore(db).ensure_index(24), EmbeddingStore(db).ensure_index(24))
    await EmbeddingStore(db).ensure_index(24)
    with pytest.raises(ValueError):
        await EmbeddingStore(db).ensure_index(0)
    second = await Database.connect(postgres.dsn)  # connecting migrates again
    await second.close()
