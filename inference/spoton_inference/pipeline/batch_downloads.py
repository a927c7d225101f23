"""A task's recordings in object storage, made local batch by batch, one batch ahead.

Sub-videos registered from a bucket (``SubVideo.remote``) are read from the recording cache
(:class:`~spoton_inference.files.recording_cache.RecordingCache`). Before batch *k* is
announced or decoded, :meth:`BatchDownloads.ready` waits until its files are local (pinned
for the task until :meth:`close`), and then starts fetching batch *k + 1*, so that download
overlaps batch *k*'s processing: from the second batch on, the task waits for downloads only
when the bandwidth does not keep up.

Example (a batch with nothing remote is ready at once):
    >>> import asyncio
    >>> downloads = BatchDownloads([[]], recordings=None, holder="t1")
    >>> asyncio.run(downloads.ready(0)) < 0.1
    True
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from spoton_inference.domain.environment import Camera, RemoteObject

# (batch, bytes done, bytes total) while a batch downloads.
DownloadProgress = Callable[[int, int, int], None]


class Recordings(Protocol):
    """Where remote sub-videos are made local (files/recording_cache.RecordingCache)."""

    def path_for(self, obj: RemoteObject) -> Path: ...

    async def fetch(
        self, objs: Sequence[RemoteObject], holder: str, progress: Callable[[int, int], None] | None = None
    ) -> list[Path]: ...

    def release(self, holder: str) -> None: ...


def with_local_paths(cameras: tuple[Camera, ...], recordings: Recordings | None) -> tuple[Camera, ...]:
    """The cameras with each remote sub-video's path where this replica's cache keeps it (the
    path stored at registration may be another replica's, or an older data directory's)."""
    if recordings is None:
        return cameras
    return tuple(
        dataclasses.replace(
            c,
            sub_videos=tuple(
                dataclasses.replace(s, path=recordings.path_for(s.remote)) if s.remote is not None else s
                for s in c.sub_videos
            ),
        )
        for c in cameras
    )


def remote_batches(cameras: Sequence[Camera]) -> list[list[RemoteObject]]:
    """Per batch, the remote sub-videos of these cameras (empty lists for local recordings)."""
    n = max((len(c.sub_videos) for c in cameras), default=0)
    return [
        [c.sub_videos[k].remote for c in cameras if k < len(c.sub_videos) and c.sub_videos[k].remote is not None]
        for k in range(n)
    ]


class BatchDownloads:
    def __init__(
        self,
        batches: Sequence[Sequence[RemoteObject]],
        recordings: Recordings | None,
        holder: str,
        progress: DownloadProgress | None = None,
        *,
        on_local: Callable[[int, list[Path]], None] | None = None,
    ) -> None:
        """``batches``: per batch the objects it needs (:func:`remote_batches`); ``holder``: who
        pins them in the cache (the task, or the task's shard), batch by batch; ``on_local(batch,
        paths)`` is called once a batch's files are local."""
        self._batches = [list(b) for b in batches]
        self._recordings = recordings
        self._holder = holder
        self._progress = progress
        self._on_local = on_local
        self._fetches: dict[int, asyncio.Task[list[Path]]] = {}

    async def ready(self, batch: int) -> float:
        """Wait until ``batch``'s files are local, then prefetch the next; the seconds waited."""
        fetch = self._start(batch)
        started = time.monotonic()
        if fetch is not None:
            # Shielded: a consumer cancelled while waiting does not cancel the download others await.
            await asyncio.shield(fetch)
        self._start(batch + 1)
        return time.monotonic() - started

    def done(self, batch: int) -> None:
        """The batch is processed: unpin its files (they stay in the cache, evictable)."""
        if self._recordings is not None and batch in self._fetches:
            self._recordings.release(self.holder(batch))

    def close(self) -> None:
        """Stop fetching and unpin every batch."""
        for batch, fetch in self._fetches.items():
            fetch.cancel()
            self.done(batch)

    def holder(self, batch: int) -> str:
        """Who pins the batch's files in the cache."""
        return f"{self._holder}/{batch}"

    def _start(self, batch: int) -> asyncio.Task[list[Path]] | None:
        if self._recordings is None or batch >= len(self._batches) or not self._batches[batch]:
            return None
        if batch not in self._fetches:
            recordings, objects = self._recordings, self._batches[batch]

            def progress(done: int, total: int) -> None:
                if self._progress is not None:
                    self._progress(batch, done, total)

            progress(0, sum(obj.size for obj in objects))  # known before the first byte comes
            fetch = asyncio.create_task(
                recordings.fetch(objects, self.holder(batch), progress), name=f"fetch-{self.holder(batch)}"
            )
            fetch.add_done_callback(functools.partial(self._fetched, batch))
            self._fetches[batch] = fetch
        return self._fetches[batch]

    def _fetched(self, batch: int, fetch: asyncio.Task[list[Path]]) -> None:
        # A prefetch whose batch is never reached (the task failed first) fails quietly here; a
        # batch that is reached raises its error through ready().
        if fetch.cancelled() or fetch.exception() is not None:
            return
        if self._on_local is not None:
            self._on_local(batch, fetch.result())
