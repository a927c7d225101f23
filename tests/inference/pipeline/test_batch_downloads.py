"""A task's recordings fetched batch by batch: each batch waited for before it is used, the
next fetched meanwhile, each unpinned once processed, and a failed fetch failing the wait."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from spoton_inference.domain.environment import Camera, RemoteObject, SubVideo
from spoton_inference.domain.errors import NotFound
from spoton_inference.pipeline.batch_downloads import BatchDownloads, remote_batches, with_local_paths

pytestmark = pytest.mark.timeout(10)


def _object(batch: int, camera: str) -> RemoteObject:
    return RemoteObject("rec", f"site/cameras/{camera}/sub_video_{batch + 1:02d}.mp4", 100, f"etag{batch}{camera}")


class _Recordings:
    """Fetches on demand: each fetch waits until the test lets it finish (or fail)."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.released: list[str] = []
        self.gates: dict[str, asyncio.Future[None]] = {}
        self.begun = asyncio.Event()

    def path_for(self, obj: RemoteObject) -> Path:
        return Path("/cache") / obj.key

    async def fetch(self, objs: Sequence[RemoteObject], holder: str, progress=None) -> list[Path]:
        self.started.append(holder)
        self.gates[holder] = asyncio.get_running_loop().create_future()
        self.begun.set()
        if progress is not None:
            progress(0, sum(o.size for o in objs))
        await self.gates[holder]
        return [self.path_for(o) for o in objs]

    def release(self, holder: str) -> None:
        self.released.append(holder)

    async def began(self, holder: str) -> asyncio.Future[None]:
        """The gate of ``holder``'s fetch, once it has begun."""
        async with asyncio.timeout(2):
            while holder not in self.gates:  # the fetch is a task of its own: it begins a few turns later
                self.begun.clear()
                await self.begun.wait()
        return self.gates[holder]


async def test_each_batch_is_waited_for_and_the_next_is_fetched_meanwhile():
    recordings = _Recordings()
    batches = [[_object(k, "c1"), _object(k, "c2")] for k in range(3)]
    local: list[tuple[int, list[Path]]] = []  # what the task starts making browser copies of
    downloads = BatchDownloads(batches, recordings, "task", on_local=lambda k, paths: local.append((k, paths)))
    first = asyncio.create_task(downloads.ready(0))
    gate = await recordings.began("task/0")
    assert recordings.started == ["task/0"] and not first.done()
    gate.set_result(None)
    assert await first >= 0
    assert local == [(0, [recordings.path_for(o) for o in batches[0]])]
    (await recordings.began("task/1")).set_result(None)  # the prefetch, while batch 0 is processed
    assert recordings.started == ["task/0", "task/1"]
    assert await downloads.ready(1) < 0.05  # already local: no wait
    await recordings.began("task/2")
    downloads.done(0)
    assert recordings.released == ["task/0"]
    downloads.close()  # batch 2's fetch, in flight, stops; everything left is unpinned
    assert sorted(recordings.released) == ["task/0", "task/0", "task/1", "task/2"]


async def test_a_failed_fetch_fails_the_wait_for_its_batch():
    recordings = _Recordings()
    downloads = BatchDownloads([[_object(0, "c1")]], recordings, "task")
    waiting = asyncio.create_task(downloads.ready(0))
    (await recordings.began("task/0")).set_exception(NotFound("s3://rec/site/cameras/c1/sub_video_01.mp4 not found"))
    with pytest.raises(NotFound, match=r"sub_video_01\.mp4"):
        await waiting
    downloads.close()


def test_remote_sub_videos_are_read_where_this_replica_s_cache_keeps_them():
    local = SubVideo(Path("/site/cameras/c1/sub_video_01.mp4"), 10)
    remote = SubVideo(Path("/elsewhere/sub_video_01.mp4"), 10, _object(0, "c2"))
    cameras = (
        Camera("c1", "c1", 10.0, 64, 48, None, (local,)),
        Camera("c2", "c2", 10.0, 64, 48, None, (remote,)),
    )
    moved = with_local_paths(cameras, _Recordings())
    assert moved[0].sub_videos[0] == local
    assert moved[1].sub_videos[0].path == Path("/cache/site/cameras/c2/sub_video_01.mp4")
    assert remote_batches(cameras) == [[_object(0, "c2")]]
