import asyncio
import uuid

import numpy as np
import pytest

from spoton_inference.storage.gallery import GalleryEntry, RedisGallery


def _unit(seed: int, dim: int = 1280) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _entry(gid: int, last_seen: float, *, embedding: bool = True) -> GalleryEntry:
    return GalleryEntry(gid, _unit(gid) if embedding else None, (gid * 1.5, -2.25), f"c{gid % 3}", last_seen)


@pytest.fixture
def scope() -> str:
    return f"env-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def make_gallery(redis_server):
    made: list[RedisGallery] = []

    def make(max_size: int = 100, max_age_s: float = 60.0) -> RedisGallery:
        gallery = RedisGallery.from_url(redis_server.url, max_size=max_size, max_age_s=max_age_s)
        made.append(gallery)
        return gallery

    yield make
    for gallery in made:
        await gallery.close()


async def test_entries_round_trip_exactly_most_recent_first(make_gallery, scope):
    gallery = make_gallery()
    entries = [_entry(1, 1000.0), _entry(2, 1002.5), _entry(3, 1001.25, embedding=False)]
    entries.append(GalleryEntry(4, _unit(4, dim=8), None, "cam-é", 1000.0 + 1e-6))
    await gallery.upsert(scope, entries)
    loaded = await gallery.load(scope)
    assert [e.global_id for e in loaded] == [2, 3, 4, 1]
    by_id = {e.global_id: e for e in entries}
    for got in loaded:
        want = by_id[got.global_id]
        assert (got.camera_id, got.last_seen, got.map_xy) == (want.camera_id, want.last_seen, want.map_xy)
        if want.embedding is None:
            assert got.embedding is None
        else:
            assert got.embedding.dtype == np.float32
            assert got.embedding.tobytes() == want.embedding.tobytes()


async def test_an_identity_is_updated_in_place_and_never_rolled_back(make_gallery, scope):
    gallery = make_gallery()
    await gallery.upsert(scope, [GalleryEntry(7, None, (1.0, 1.0), "c1", 100.0)])
    await gallery.upsert(scope, [GalleryEntry(7, None, (2.0, 2.0), "c2", 105.0)])
    await gallery.upsert(scope, [GalleryEntry(7, None, (0.0, 0.0), "c0", 101.0)])  # late, out of order
    [only] = await gallery.load(scope)
    assert (only.global_id, only.camera_id, only.map_xy, only.last_seen) == (7, "c2", (2.0, 2.0), 105.0)


async def test_the_size_bound_drops_the_least_recently_seen(make_gallery, redis_server, scope):
    gallery = make_gallery(max_size=5)
    await gallery.upsert(scope, [_entry(i, 1000.0 + i) for i in range(1, 9)])
    assert [e.global_id for e in await gallery.load(scope)] == [8, 7, 6, 5, 4]
    await gallery.upsert(scope, [_entry(2, 1020.0)])  # an old identity seen again comes back, evicting the oldest
    assert [e.global_id for e in await gallery.load(scope)] == [2, 8, 7, 6, 5]
    # Both keys are trimmed, not just what load returns.
    assert await gallery.client.hlen(f"spoton:gallery:{{{scope}}}:entries") == 5
    assert await gallery.client.zcard(f"spoton:gallery:{{{scope}}}:seen") == 5


async def test_the_age_bound_follows_the_newest_last_seen(make_gallery, scope):
    gallery = make_gallery(max_age_s=10.0)
    await gallery.upsert(scope, [_entry(1, 1000.0), _entry(2, 1005.0)])
    assert [e.global_id for e in await gallery.load(scope)] == [2, 1]
    # now = 1010: exactly max_age_s old is still live.
    await gallery.upsert(scope, [_entry(3, 1010.0)])
    assert [e.global_id for e in await gallery.load(scope)] == [3, 2, 1]
    await gallery.upsert(scope, [_entry(4, 1012.5)])
    assert [e.global_id for e in await gallery.load(scope)] == [4, 3, 2]
    await gallery.upsert(scope, [_entry(5, 5000.0)])
    assert [e.global_id for e in await gallery.load(scope)] == [5]
    # An entry already too old when written never appears.
    await gallery.upsert(scope, [_entry(6, 4000.0)])
    assert [e.global_id for e in await gallery.load(scope)] == [5]


async def test_keys_get_a_ttl_so_an_abandoned_scope_disappears(make_gallery, scope):
    gallery = make_gallery(max_age_s=0.3)
    await gallery.upsert(scope, [_entry(1, 1000.0)])
    ttl_ms = await gallery.client.pttl(f"spoton:gallery:{{{scope}}}:seen")
    assert 0 < ttl_ms <= 300
    assert 0 < await gallery.client.pttl(f"spoton:gallery:{{{scope}}}:entries") <= 300
    await asyncio.sleep(0.5)
    assert await gallery.load(scope) == []


async def test_a_second_replica_sees_the_first_ones_entries(make_gallery, scope):
    first, second = make_gallery(), make_gallery()
    await first.upsert(scope, [_entry(1, 10.0), _entry(2, 11.0)])
    seen = await second.load(scope)
    assert [e.global_id for e in seen] == [2, 1]
    assert seen[1].embedding.tobytes() == _unit(1).tobytes()
    await second.upsert(scope, [_entry(3, 12.0)])
    assert [e.global_id for e in await first.load(scope)] == [3, 2, 1]


async def test_a_reader_with_tighter_bounds_applies_its_own(make_gallery, scope):
    writer, reader = make_gallery(max_size=10, max_age_s=100.0), make_gallery(max_size=2, max_age_s=3.0)
    await writer.upsert(scope, [_entry(i, 100.0 + i) for i in range(1, 6)])
    assert [e.global_id for e in await reader.load(scope)] == [5, 4]
    assert len(await writer.load(scope)) == 5


async def test_reserved_ids_never_overlap_across_clients(make_gallery, scope):
    a, b = make_gallery(), make_gallery()

    async def grab(gallery: RedisGallery) -> list[int]:
        ids: list[int] = []
        for n in (1, 3, 7) * 10:
            ids += list(await gallery.reserve_ids(scope, n))
        return ids

    got_a, got_b = await asyncio.gather(grab(a), grab(b))
    assert not set(got_a) & set(got_b)
    assert sorted(got_a + got_b) == list(range(1, 2 * 110 + 1))
    assert await a.reserve_ids(scope, 0) == range(0)
    with pytest.raises(ValueError):
        await a.reserve_ids(scope, -1)


async def test_scopes_are_independent(make_gallery, scope):
    gallery = make_gallery(max_size=2)
    other = scope + "-other"
    await gallery.upsert(scope, [_entry(1, 1.0), _entry(2, 2.0)])
    await gallery.upsert(other, [_entry(1, 500.0), _entry(3, 9000.0), _entry(4, 9001.0)])
    assert [e.global_id for e in await gallery.load(scope)] == [2, 1]
    assert [e.global_id for e in await gallery.load(other)] == [4, 3]
    assert list(await gallery.reserve_ids(scope, 2)) == [1, 2]
    assert list(await gallery.reserve_ids(other, 1)) == [1]
    await gallery.clear(other)
    assert [e.global_id for e in await gallery.load(scope)] == [2, 1]


async def test_clear_forgets_entries_but_keeps_ids_unless_asked(make_gallery, scope):
    gallery = make_gallery()
    await gallery.upsert(scope, [_entry(1, 1.0)])
    assert list(await gallery.reserve_ids(scope, 3)) == [1, 2, 3]
    await gallery.clear(scope)
    assert await gallery.load(scope) == []
    assert list(await gallery.reserve_ids(scope, 1)) == [4]
    await gallery.clear(scope, reset_ids=True)
    assert list(await gallery.reserve_ids(scope, 1)) == [1]
    await gallery.upsert(scope, [_entry(9, 1.0)])  # a cleared scope is usable again
    assert [e.global_id for e in await gallery.load(scope)] == [9]


async def test_large_batches_and_bounds_stay_within_lua_limits(make_gallery, scope):
    gallery = make_gallery(max_size=12_000, max_age_s=1e9)
    await gallery.upsert(scope, [GalleryEntry(i, None, None, "c", float(i)) for i in range(20_000)])
    loaded = await gallery.load(scope)
    assert len(loaded) == 12_000 and loaded[0].global_id == 19_999 and loaded[-1].global_id == 8000


async def test_bad_input_is_rejected(make_gallery, scope):
    with pytest.raises(ValueError):
        make_gallery(max_size=0)
    with pytest.raises(ValueError):
        make_gallery(max_age_s=0)
    gallery = make_gallery()
    with pytest.raises(ValueError, match="1-D"):
        await gallery.upsert(scope, [GalleryEntry(1, np.zeros((2, 2), np.float32), None, "c", 1.0)])
    with pytest.raises(ValueError, match="finite"):
        await gallery.upsert(scope, [GalleryEntry(1, None, None, "c", float("nan"))])
    with pytest.raises(ValueError, match="scope"):
        await gallery.load("")
