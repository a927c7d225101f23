"""ObjectStore against a real S3 server (SeaweedFS, tests/support/s3_server.py): listing, reads,
verified and resumable downloads, and the errors a user acts on."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from support.s3_server import S3Server

from spoton_inference.domain.environment import RemoteObject
from spoton_inference.domain.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable
from spoton_inference.files.object_store import PART_SUFFIX, ObjectStore

MIB = 1 << 20
# Big enough that the server dies with much of it unsent (socket buffers hold a few MiB).
LARGE_BYTES = 48 * MIB
BREAK_AT_BYTES = 4 * MIB
# When the server comes back after a crash or a hang.
DOWN_FOR_S = 0.5
SHORT_OUTAGE_S = 1.0
# Slack over the outage bound for the last attempt and scheduling.
BOUND_SLACK_S = 2.0
TEST_TIMEOUT_S = 60


@pytest_asyncio.fixture
async def store(s3_server: S3Server) -> AsyncIterator[ObjectStore]:
    store = ObjectStore(s3_server.s3_config(outage_wait_s=5.0, retry_max_s=0.5))
    yield store
    await store.close()


@pytest.fixture
def own_server() -> Iterator[S3Server]:
    """A server of the test's own, for tests that kill it."""
    with S3Server() as server:
        yield server


def _leftovers(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(PART_SUFFIX)]


async def test_list_head_and_read_see_the_uploaded_objects(s3_server: S3Server, store: ObjectStore) -> None:
    bucket = s3_server.create_bucket()
    uploaded = {
        f"site/cameras/c{i}/sub_video_01.mp4": s3_server.put(bucket, f"site/cameras/c{i}/sub_video_01.mp4", b"x" * i)
        for i in (1, 2, 3)
    }
    s3_server.put(bucket, "elsewhere/a.mp4", b"other")

    listed = await store.list(bucket, "site/")

    assert {(o.key, o.size, o.etag) for o in listed} == {(k, int(k[14]), etag) for k, etag in uploaded.items()}
    key = "site/cameras/c2/sub_video_01.mp4"
    assert await store.head(bucket, key) == RemoteObject(bucket, key, 2, uploaded[key])
    assert await store.read(bucket, key, max_bytes=2) == b"xx"
    with pytest.raises(InvalidArgument, match=f"s3://{bucket}/{key} is 2 bytes"):
        await store.read(bucket, key, max_bytes=1)


async def test_download_reports_progress_and_lands_whole(
    s3_server: S3Server, store: ObjectStore, tmp_path: Path
) -> None:
    bucket = s3_server.create_bucket()
    data = os.urandom(5 * MIB + 7)
    obj = RemoteObject(bucket, "v.mp4", len(data), s3_server.put(bucket, "v.mp4", data))
    seen: list[int] = []

    await store.download(obj, tmp_path / "out" / "v.mp4", seen.append)

    assert (tmp_path / "out" / "v.mp4").read_bytes() == data
    assert len(seen) > 1 and sum(seen) == len(data)
    assert _leftovers(tmp_path) == []

    empty = RemoteObject(bucket, "empty.mp4", 0, s3_server.put(bucket, "empty.mp4", b""))
    await store.download(empty, tmp_path / "empty.mp4")
    assert (tmp_path / "empty.mp4").read_bytes() == b""


async def test_an_object_changed_since_listing_is_refused(
    s3_server: S3Server, store: ObjectStore, tmp_path: Path
) -> None:
    bucket = s3_server.create_bucket()
    listed = RemoteObject(bucket, "v.mp4", 4, s3_server.put(bucket, "v.mp4", b"old!"))
    s3_server.put(bucket, "v.mp4", b"new!")  # same size, another ETag
    dest = tmp_path / "v.mp4"

    with pytest.raises(FailedPrecondition, match=f"s3://{bucket}/v.mp4 changed since it was listed"):
        await store.download(listed, dest)
    current = await store.head(bucket, "v.mp4")
    with pytest.raises(FailedPrecondition, match="it is 4 bytes now, 5 when listed"):
        await store.download(RemoteObject(bucket, "v.mp4", 5, current.etag), dest)

    assert not dest.exists() and _leftovers(tmp_path) == []


async def test_missing_object_or_bucket_is_not_found_naming_it(
    s3_server: S3Server, store: ObjectStore, tmp_path: Path
) -> None:
    bucket = s3_server.create_bucket()

    with pytest.raises(NotFound, match=f"s3://{bucket}/nope.mp4 does not exist"):
        await store.download(RemoteObject(bucket, "nope.mp4", 1, ""), tmp_path / "x")
    with pytest.raises(NotFound, match=f"s3://{bucket}/nope.mp4 does not exist"):
        await store.head(bucket, "nope.mp4")
    with pytest.raises(NotFound, match=r"s3://no-such-bucket-here/env\.json does not exist"):
        await store.read("no-such-bucket-here", "env.json", 100)


async def test_wrong_secret_is_permission_denied_without_echoing_it(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.create_bucket()
    obj = RemoteObject(bucket, "v.mp4", 3, s3_server.put(bucket, "v.mp4", b"abc"))
    wrong = "not-" + s3_server.secret_key
    store = ObjectStore(s3_server.s3_config(secret_access_key=wrong))
    try:
        attempts = (
            lambda: store.download(obj, tmp_path / "v.mp4"),
            lambda: store.list(bucket, ""),
            lambda: store.head(bucket, "v.mp4"),
        )
        for attempt in attempts:
            with pytest.raises(PermissionDenied, match=f"s3://{bucket}/.*SPOTON_S3_SECRET_ACCESS_KEY") as caught:
                await attempt()
            assert wrong not in str(caught.value)
        assert store.stats.retries == 0  # final at once, no waiting out the outage bound
    finally:
        await store.close()


async def test_an_identity_limited_to_another_bucket_is_denied(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.create_bucket()
    obj = RemoteObject(bucket, "v.mp4", 3, s3_server.put(bucket, "v.mp4", b"abc"))
    other = s3_server.create_bucket(s3_server.other_bucket)
    s3_server.put(other, "ok.json", b"{}")
    limited = ObjectStore(
        s3_server.s3_config(access_key_id=s3_server.limited_access_key, secret_access_key=s3_server.limited_secret_key)
    )
    try:
        assert await limited.read(other, "ok.json", 10) == b"{}"  # the key itself is valid
        with pytest.raises(PermissionDenied, match=f"access to s3://{bucket}/v.mp4 was refused"):
            await limited.download(obj, tmp_path / "v.mp4")
    finally:
        await limited.close()


@pytest.mark.timeout(TEST_TIMEOUT_S)
async def test_a_crash_mid_download_resumes_where_it_broke_off(own_server: S3Server, tmp_path: Path) -> None:
    bucket = own_server.create_bucket()
    data = os.urandom(LARGE_BYTES)
    obj = RemoteObject(bucket, "big.mp4", len(data), own_server.put(bucket, "big.mp4", data))
    store = ObjectStore(own_server.s3_config(outage_wait_s=30.0, retry_max_s=0.5))
    restarted: list[asyncio.Task[None]] = []

    async def come_back() -> None:
        await asyncio.sleep(DOWN_FOR_S)
        await asyncio.to_thread(own_server.start)

    def crash_once(_: int) -> None:
        if not restarted and store.stats.bytes_received >= BREAK_AT_BYTES:
            own_server.stop()  # SIGKILL: the body breaks off mid-stream
            restarted.append(asyncio.ensure_future(come_back()))

    try:
        await store.download(obj, tmp_path / "big.mp4", crash_once)
        await restarted[0]
    finally:
        await store.close()

    assert (tmp_path / "big.mp4").read_bytes() == data
    assert store.stats.body_requests >= 2 and store.stats.retries >= 1
    # Resumed with Range from the byte it reached: nothing was fetched twice.
    assert store.stats.bytes_received == len(data)


@pytest.mark.timeout(TEST_TIMEOUT_S)
async def test_a_hung_server_times_out_and_the_download_resumes(own_server: S3Server, tmp_path: Path) -> None:
    bucket = own_server.create_bucket()
    data = os.urandom(LARGE_BYTES)
    obj = RemoteObject(bucket, "big.mp4", len(data), own_server.put(bucket, "big.mp4", data))
    store = ObjectStore(own_server.s3_config(outage_wait_s=30.0, retry_max_s=0.5, read_timeout_s=0.5))
    resumed: list[asyncio.Handle] = []

    def hang_once(_: int) -> None:
        if not resumed and store.stats.bytes_received >= BREAK_AT_BYTES:
            own_server.pause()  # connections stay open, nothing more arrives
            resumed.append(asyncio.get_running_loop().call_later(DOWN_FOR_S * 4, own_server.resume))

    try:
        await store.download(obj, tmp_path / "big.mp4", hang_once)
    finally:
        own_server.resume()
        await store.close()

    assert (tmp_path / "big.mp4").read_bytes() == data
    assert store.stats.retries >= 1 and store.stats.bytes_received == len(data)


@pytest.mark.timeout(TEST_TIMEOUT_S)
async def test_a_server_that_stays_down_is_unavailable_within_the_bound(own_server: S3Server, tmp_path: Path) -> None:
    bucket = own_server.create_bucket()
    data = os.urandom(LARGE_BYTES)
    obj = RemoteObject(bucket, "big.mp4", len(data), own_server.put(bucket, "big.mp4", data))
    store = ObjectStore(own_server.s3_config(outage_wait_s=SHORT_OUTAGE_S, retry_max_s=0.2))
    crashed_at: list[float] = []

    def crash(_: int) -> None:
        if not crashed_at and store.stats.bytes_received >= BREAK_AT_BYTES:
            own_server.stop()
            crashed_at.append(time.monotonic())

    try:
        with pytest.raises(Unavailable, match=f"s3://{bucket}/big.mp4: .*SPOTON_S3_OUTAGE_WAIT_S.*last error"):
            await store.download(obj, tmp_path / "big.mp4", crash)
        assert time.monotonic() - crashed_at[0] < SHORT_OUTAGE_S + BOUND_SLACK_S
        assert not (tmp_path / "big.mp4").exists() and _leftovers(tmp_path) == []

        started = time.monotonic()
        with pytest.raises(Unavailable, match=f"s3://{bucket}/big.mp4: .*EndpointConnectionError"):
            await store.head(bucket, "big.mp4")
        assert SHORT_OUTAGE_S <= time.monotonic() - started < SHORT_OUTAGE_S + BOUND_SLACK_S
    finally:
        await store.close()
