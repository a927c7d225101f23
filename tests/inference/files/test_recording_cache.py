"""RecordingCache against a real S3 server: pinning, LRU eviction under the limit, waiting for
room, shared downloads, and what a restart finds on disk."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from support.s3_server import S3Server

from spoton_inference.domain.environment import RemoteObject
from spoton_inference.domain.errors import NotFound, Unavailable
from spoton_inference.files.object_store import PART_SUFFIX, ObjectStore
from spoton_inference.files.recording_cache import RecordingCache

SIZE = 256 * 1024
LARGE_BYTES = 16 << 20
GIVE_UP_AT_BYTES = 1 << 20
# Limits in whole recordings of SIZE bytes.
ROOM_FOR_TWO = 2 * SIZE + SIZE // 2
ROOM_FOR_THREE = 3 * SIZE + SIZE // 2
# How long a fetch waits for room (the store's outage wait) where the test wants it to give up.
SHORT_WAIT_S = 1.0
BOUND_SLACK_S = 2.0
WAITING_TIMEOUT_S = 10.0
POLL_S = 0.01


@pytest_asyncio.fixture
async def store(s3_server: S3Server) -> AsyncIterator[ObjectStore]:
    store = ObjectStore(s3_server.s3_config(outage_wait_s=SHORT_WAIT_S, retry_max_s=0.2))
    yield store
    await store.close()


@pytest.fixture
def recordings(s3_server: S3Server) -> dict[str, RemoteObject]:
    """Five recordings of SIZE random bytes, a to e, in a bucket of their own."""
    bucket = s3_server.create_bucket()
    found = {}
    for name in "abcde":
        key = f"site/cameras/{name}/sub_video_01.mp4"
        found[name] = RemoteObject(bucket, key, SIZE, s3_server.put(bucket, key, os.urandom(SIZE)))
    return found


def _data(s3_server: S3Server, obj: RemoteObject) -> bytes:
    return bytes(s3_server.client().get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read())


async def _until(condition: Callable[[], bool], timeout_s: float = WAITING_TIMEOUT_S) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (a counter: nothing to wait on)
            await asyncio.sleep(POLL_S)


async def test_fetch_makes_files_local_pins_them_and_reports_progress(
    s3_server: S3Server, store: ObjectStore, recordings: dict[str, RemoteObject], tmp_path: Path
) -> None:
    cache = RecordingCache(tmp_path, ROOM_FOR_THREE, store)
    objs = [recordings["a"], recordings["b"]]
    seen: list[tuple[int, int]] = []

    paths = await cache.fetch(objs, "task-1", lambda done, total: seen.append((done, total)))

    assert paths == [cache.path_for(o) for o in objs]
    assert [p.read_bytes() for p in paths] == [_data(s3_server, o) for o in objs]
    assert paths[0].name == "sub_video_01.mp4"  # a sub-video keeps its file name
    assert cache.pinned("task-1") == set(paths) and cache.used_bytes == 2 * SIZE
    assert seen[-1] == (2 * SIZE, 2 * SIZE) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    cache.release("task-1")
    assert cache.pinned("task-1") == frozenset() and all(p.exists() for p in paths)


async def test_least_recently_used_unpinned_files_make_room(
    store: ObjectStore, recordings: dict[str, RemoteObject], tmp_path: Path
) -> None:
    cache = RecordingCache(tmp_path, ROOM_FOR_TWO, store)
    a, b, c = recordings["a"], recordings["b"], recordings["c"]
    for obj in (a, b, a):  # a used last: b is the least recently used
        await cache.fetch([obj], "task-1")
        cache.release("task-1")

    await cache.fetch([c], "task-2")

    assert [cache.path_for(o).exists() for o in (a, b, c)] == [True, False, True]
    assert cache.used_bytes == 2 * SIZE <= cache.max_bytes


async def test_pinned_files_are_never_evicted_and_a_full_cache_fails_in_bounded_time(
    store: ObjectStore, recordings: dict[str, RemoteObject], tmp_path: Path
) -> None:
    cache = RecordingCache(tmp_path, ROOM_FOR_TWO, store)
    held = await cache.fetch([recordings["a"], recordings["b"]], "task-1")

    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"recording cache is full.*SPOTON_RECORDING_CACHE_MAX_BYTES"):
        await cache.fetch([recordings["c"]], "task-2")

    assert SHORT_WAIT_S <= time.monotonic() - started < SHORT_WAIT_S + BOUND_SLACK_S
    assert all(p.exists() for p in held) and not cache.path_for(recordings["c"]).exists()
    assert cache.pinned("task-2") == frozenset() and cache.used_bytes == 2 * SIZE


async def test_a_fetch_waiting_for_room_goes_on_when_a_task_releases(
    s3_server: S3Server, recordings: dict[str, RemoteObject], tmp_path: Path
) -> None:
    store = ObjectStore(s3_server.s3_config(outage_wait_s=30.0))
    cache = RecordingCache(tmp_path, ROOM_FOR_TWO, store)
    try:
        await cache.fetch([recordings["a"], recordings["b"]], "task-1")
        waiting = asyncio.ensure_future(cache.fetch([recordings["c"]], "task-2"))
        given_up = asyncio.ensure_future(cache.fetch([recordings["d"]], "task-3"))
        await _until(lambda: cache.waiting == 2)
        given_up.cancel()  # a task stopped while it waited: its wait ends, nothing stays pinned
        await _until(lambda: cache.waiting == 1)
        assert not waiting.done() and cache.pinned("task-3") == frozenset()

        cache.release("task-1")
        [path] = await asyncio.wait_for(waiting, WAITING_TIMEOUT_S)
    finally:
        await store.close()

    assert path.exists() and cache.used_bytes == 2 * SIZE
    # One of the released a and b made room; d was never fetched.
    assert [cache.path_for(recordings[n]).exists() for n in "abd"].count(True) == 1


async def test_concurrent_fetches_of_one_recording_download_it_once(
    store: ObjectStore, recordings: dict[str, RemoteObject], tmp_path: Path
) -> None:
    cache = RecordingCache(tmp_path, ROOM_FOR_THREE, store)
    obj = recordings["a"]
    progress: dict[str, list[int]] = {"task-1": [], "task-2": []}

    first, second = await asyncio.gather(
        *(cache.fetch([obj], task, lambda done, _, task=task: progress[task].append(done)) for task in progress)
    )

    assert first == second == [cache.path_for(obj)]
    assert store.stats.body_requests == 1 and store.stats.bytes_received == SIZE
    assert cache.pinned("task-1") == cache.pinned("task-2") == {cache.path_for(obj)}
    assert progress["task-1"][-1] == progress["task-2"][-1] == SIZE


async def test_a_failed_fetch_leaves_nothing_pinned(
    store: ObjectStore, recordings: dict[str, RemoteObject], tmp_path: Path
) -> None:
    cache = RecordingCache(tmp_path, ROOM_FOR_THREE, store)
    missing = RemoteObject(recordings["a"].bucket, "site/cameras/z/sub_video_01.mp4", SIZE, "")

    with pytest.raises(NotFound, match=r"sub_video_01\.mp4 does not exist"):
        await cache.fetch([recordings["a"], missing], "task-1")

    assert cache.pinned("task-1") == frozenset()


async def test_a_recording_larger_than_the_cache_is_refused_at_once(
    store: ObjectStore, recordings: dict[str, RemoteObject], tmp_path: Path
) -> None:
    cache = RecordingCache(tmp_path, SIZE - 1, store)

    with pytest.raises(Unavailable, match="larger than the whole recording cache"):
        await cache.fetch([recordings["a"]], "task-1")
    assert store.stats.body_requests == 0


async def test_a_restart_indexes_the_cached_files_and_drops_partial_ones(
    s3_server: S3Server, store: ObjectStore, recordings: dict[str, RemoteObject], tmp_path: Path
) -> None:
    before = RecordingCache(tmp_path, ROOM_FOR_THREE, store)
    paths = await before.fetch([recordings["a"], recordings["b"]], "task-1")
    partial = paths[0].parent / ("other.mp4" + PART_SUFFIX)
    partial.write_bytes(b"half a download")

    fresh = ObjectStore(s3_server.s3_config())
    try:
        after = RecordingCache(tmp_path, ROOM_FOR_THREE, fresh)
        assert after.used_bytes == 2 * SIZE and not partial.exists()
        assert await after.fetch([recordings["a"], recordings["b"]], "task-1") == paths
    finally:
        await fresh.close()
    assert fresh.stats.body_requests == 0  # checked on disk, not fetched again


async def test_a_damaged_cached_file_is_fetched_again(
    s3_server: S3Server, store: ObjectStore, recordings: dict[str, RemoteObject], tmp_path: Path
) -> None:
    a, b = recordings["a"], recordings["b"]
    cache = RecordingCache(tmp_path, ROOM_FOR_THREE, store)
    path_a, path_b = await cache.fetch([a, b], "task-1")
    cache.release("task-1")
    path_a.write_bytes(path_a.read_bytes()[:100])  # cut short: caught by its size
    with path_b.open("r+b") as f:  # same size, other bytes: caught by its MD5 after a restart
        f.write(b"\0" * 100)

    await cache.fetch([a], "task-2")
    assert path_a.read_bytes() == _data(s3_server, a) and store.stats.body_requests == 3

    restarted = RecordingCache(tmp_path, ROOM_FOR_THREE, store)
    await restarted.fetch([b], "task-3")
    assert path_b.read_bytes() == _data(s3_server, b) and store.stats.body_requests == 4


async def test_a_fetch_given_up_mid_download_leaves_nothing_behind(
    s3_server: S3Server, store: ObjectStore, tmp_path: Path
) -> None:
    bucket = s3_server.create_bucket()
    data = os.urandom(LARGE_BYTES)
    obj = RemoteObject(bucket, "big.mp4", len(data), s3_server.put(bucket, "big.mp4", data))
    cache = RecordingCache(tmp_path, 2 * len(data), store)
    fetches: list[asyncio.Future[list[Path]]] = []

    def give_up(done: int, _: int) -> None:
        if done >= GIVE_UP_AT_BYTES and len(fetches) == 1:
            fetches[0].cancel()
            # Right away, as a task retried at once would: the abandoned download must not get in the way.
            fetches.append(asyncio.ensure_future(cache.fetch([obj], "task-2")))

    fetches.append(asyncio.ensure_future(cache.fetch([obj], "task-1", give_up)))
    with pytest.raises(asyncio.CancelledError):
        await fetches[0]
    [path] = await fetches[1]

    assert path.read_bytes() == data and cache.used_bytes == len(data)
    assert cache.pinned("task-1") == frozenset()
    assert [p for p in tmp_path.rglob("*") if p.name.endswith(PART_SUFFIX)] == []
