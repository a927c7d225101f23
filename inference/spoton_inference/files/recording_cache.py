"""Recordings from object storage, kept on local disk while tasks read them, within a size limit.

Each object has a fixed place (:func:`cache_path`); the ETag is part of it, so an object changed
in the bucket is a new file and never mistaken for the old one. A task fetches the sub-videos of a
batch under its id (``holder``): they are downloaded unless present, and pinned until the task
releases them. Concurrent fetches of one object share one download.

The limit (SPOTON_RECORDING_CACHE_MAX_BYTES) counts finished files plus downloads in progress.
Before a download, the least recently used unpinned files are evicted to make room; when pinned
files alone leave none, the fetch waits for a release, for at most the store's outage wait, and
then fails with :class:`Unavailable`: the limit is never exceeded.

A restart indexes what is on disk (half-written ``.part`` files are removed); each file found so
is checked once, by size and MD5 where the ETag is one, on its first use after the restart.
Files fetched since are checked by size only (the download verified their content).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote

from spoton_inference.domain.environment import RemoteObject
from spoton_inference.domain.errors import Unavailable
from spoton_inference.files.object_store import PART_SUFFIX, ObjectStore, check_file

log = logging.getLogger(__name__)

# Under the data directory.
CACHE_DIR = "recordings-cache"
# Downloads run at once across all fetches: enough to fill a link, few enough to share it.
MAX_PARALLEL_DOWNLOADS = 4
# Longest file or directory name most filesystems take; longer key segments are hashed.
MAX_NAME_BYTES = 255
HASHED_NAME_CHARS = 40
# Characters kept as they are in a key segment; the rest are %-escaped ('%' too, so no two
# keys map to one path).
_SAFE = "-_.~+=,()!'"
_ETAG_UNSAFE = re.compile(r"[^A-Za-z0-9-]")

Progress = Callable[[int, int], None]


def cache_path(root: Path, obj: RemoteObject) -> Path:
    """Where ``obj`` is kept: ``root/<bucket>/<key>@<etag>/<file name>``. The file keeps its own
    name (a sub-video's filename is shown and used in media paths); no key can reach outside root.

    >>> root = Path("/cache")
    >>> cache_path(root, RemoteObject("rec", "site/cameras/c1/sub_video_01.mp4", 10, "9e107d9d"))
    PosixPath('/cache/rec/site/cameras/c1/sub_video_01.mp4@9e107d9d/sub_video_01.mp4')
    >>> cache_path(root, RemoteObject("rec", "../x y/a.mp4", 10, "1f2e-2"))
    PosixPath('/cache/rec/%2E%2E/x%20y/a.mp4@1f2e-2/a.mp4')
    """
    *dirs, name = [_segment(part) for part in obj.key.split("/")]
    etag = _ETAG_UNSAFE.sub("_", obj.etag) or "no-etag"
    return root.joinpath(_segment(obj.bucket), *dirs, _fit(f"{name}@{etag}"), name)


@dataclasses.dataclass(slots=True)
class _Entry:
    size: int
    # Checked in this process: downloaded here, or found on disk and its content checked since.
    verified: bool


@dataclasses.dataclass(slots=True)
class _Work:
    """Making one file local (a check, a download), shared by every fetch that needs it."""

    task: asyncio.Task[None] | None = None
    done: int = 0
    # Cancelled because every fetch waiting for it gave up; a new fetch starts over after it.
    abandoned: bool = False
    listeners: list[Callable[[int], None]] = dataclasses.field(default_factory=list)

    def progress(self, n: int) -> None:
        self.done += n
        for listener in self.listeners:
            listener(n)


class RecordingCache:
    """The local copies of recordings under ``root``, at most ``max_bytes`` of them."""

    def __init__(self, root: Path, max_bytes: int, store: ObjectStore) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.store = store
        # Least recently used first.
        self._entries: collections.OrderedDict[Path, _Entry] = collections.OrderedDict()
        self._pins: dict[str, set[Path]] = {}
        self._work: dict[Path, _Work] = {}
        self._cached = 0  # bytes of the files in _entries
        self._reserved = 0  # bytes of downloads in progress
        self._room_changed = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_PARALLEL_DOWNLOADS)
        # Fetches waiting for room now (for tests and metrics).
        self.waiting = 0
        self._index()

    def path_for(self, obj: RemoteObject) -> Path:
        return cache_path(self.root, obj)

    @property
    def used_bytes(self) -> int:
        """Bytes of cached files plus those reserved by downloads in progress."""
        return self._cached + self._reserved

    def pinned(self, holder: str) -> frozenset[Path]:
        return frozenset(self._pins.get(holder, ()))

    async def fetch(self, objs: Sequence[RemoteObject], holder: str, progress: Progress | None = None) -> list[Path]:
        """Make ``objs`` local and pin them for ``holder`` until :meth:`release`; their paths, in order.

        ``progress(bytes_done, bytes_total)`` follows the whole set (files already here count as
        done at once). On an error nothing this call pinned stays pinned.
        """
        paths = [self.path_for(obj) for obj in objs]
        unique = dict(zip(paths, objs, strict=True))
        pins = self._pins.setdefault(holder, set())
        added = unique.keys() - pins
        pins.update(added)  # before any wait, so no eviction takes them meanwhile
        total = sum(obj.size for obj in unique.values())
        done = 0

        def on_bytes(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        tasks = [asyncio.ensure_future(self._ensure(obj, path, on_bytes)) for path, obj in unique.items()]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            pins.difference_update(added)
            if not pins:
                self._pins.pop(holder, None)
            self._signal_room()
            raise
        return paths

    def release(self, holder: str) -> None:
        """Unpin everything ``holder`` fetched: the files stay, evictable, until room is needed."""
        if self._pins.pop(holder, None):
            self._signal_room()

    # -- internals ---------------------------------------------------------------------------

    async def _ensure(self, obj: RemoteObject, path: Path, on_bytes: Callable[[int], None]) -> None:
        entry = self._entries.get(path)
        if entry is not None and entry.verified and path not in self._work:
            if _size(path) == entry.size:
                self._touch(path)
                on_bytes(entry.size)
                return
            log.warning("cached copy of %s was changed on disk: fetching it again", obj.uri)
            self._drop(path)
        work = self._work.get(path)
        if work is None or work.abandoned:
            previous = work.task if work is not None else None
            work = self._work[path] = _Work()
            work.task = asyncio.ensure_future(self._make_local(obj, path, work, previous))
        assert work.task is not None
        on_bytes(work.done)  # catch up with a download another fetch started
        work.listeners.append(on_bytes)
        try:
            # Shielded: one fetch giving up must not stop the download others wait for.
            await asyncio.shield(work.task)
        finally:
            work.listeners.remove(on_bytes)
            if not work.listeners and not work.task.done():
                work.abandoned = True  # nobody wants it any more
                work.task.cancel()

    async def _make_local(
        self, obj: RemoteObject, path: Path, work: _Work, previous: asyncio.Task[None] | None
    ) -> None:
        try:
            if previous is not None and not previous.done():
                log.debug("waiting for the abandoned download of %s to stop", obj.uri)
                await asyncio.wait([previous])  # it removes its partial file first
            entry = self._entries.get(path)
            if entry is not None:
                problem = await asyncio.to_thread(check_file, path, obj)
                if problem is None:
                    entry.verified = True
                    self._touch(path)
                    work.progress(obj.size)
                    return
                log.warning("cached copy of %s is damaged (%s): fetching it again", obj.uri, problem)
                self._drop(path)
            await self._reserve(obj)
            try:
                async with self._slots:
                    await self.store.download(obj, path, work.progress)
                self._add(path, obj.size, verified=True)
            finally:
                self._reserved -= obj.size
                self._signal_room()
        finally:
            if self._work.get(path) is work:
                del self._work[path]

    async def _reserve(self, obj: RemoteObject) -> None:
        """Count ``obj`` against the limit, evicting or waiting for room first."""
        if obj.size > self.max_bytes:
            raise Unavailable(
                f"{obj.uri} ({obj.size} bytes) is larger than the whole recording cache "
                f"(SPOTON_RECORDING_CACHE_MAX_BYTES={self.max_bytes})"
            )
        wait_s = self.store.config.outage_wait_s
        deadline = time.monotonic() + wait_s
        while True:
            self._evict(self.max_bytes - obj.size)
            if self.used_bytes + obj.size <= self.max_bytes:
                self._reserved += obj.size
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(
                    f"the recording cache is full: {obj.uri} needs {obj.size} bytes, and recordings that running "
                    f"tasks hold or fetch take {self.used_bytes} of SPOTON_RECORDING_CACHE_MAX_BYTES="
                    f"{self.max_bytes} (waited {wait_s:g} s for a task to release some): raise the limit or "
                    "run fewer tasks at once"
                )
            changed = self._room_changed
            self.waiting += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), left)
            finally:
                self.waiting -= 1

    def _evict(self, target: int) -> None:
        """Remove least recently used files no one pins or is checking until ``used_bytes <= target``."""
        pinned = set().union(*self._pins.values())
        for path in list(self._entries):
            if self.used_bytes <= target:
                return
            if path not in pinned and path not in self._work:
                log.info("recording cache: evicting %s", path)
                self._drop(path)

    def _add(self, path: Path, size: int, *, verified: bool) -> None:
        self._entries[path] = _Entry(size, verified)
        self._cached += size

    def _drop(self, path: Path) -> None:
        entry = self._entries.pop(path, None)
        if entry is not None:
            self._cached -= entry.size
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # its <key>@<etag> directory, now empty

    def _touch(self, path: Path) -> None:
        self._entries.move_to_end(path)
        with contextlib.suppress(OSError):
            os.utime(path)  # the order survives a restart (see _index)

    def _signal_room(self) -> None:
        self._room_changed.set()
        self._room_changed = asyncio.Event()

    def _index(self) -> None:
        """Take in the files a previous run left, least recently used first; drop partial ones."""
        found: list[tuple[float, Path, int]] = []
        for directory, _, names in os.walk(self.root):
            for name in names:
                path = Path(directory, name)
                if name.endswith(PART_SUFFIX):
                    path.unlink(missing_ok=True)
                    continue
                with contextlib.suppress(OSError):
                    stat = path.stat()
                    found.append((stat.st_mtime, path, stat.st_size))
        for _, path, size in sorted(found):
            self._add(path, size, verified=False)
        self._evict(self.max_bytes)  # the limit may have been lowered since
        if found:
            log.info("recording cache: %d files, %d bytes in %s", len(self._entries), self.used_bytes, self.root)


def _segment(text: str) -> str:
    """A key segment as a safe name: '.' and '..' escaped, an empty one (``a//b``) as ``%2F``,
    which no segment can escape to (segments never hold '/')."""
    if text in (".", ".."):
        return "%2E" * len(text)
    return _fit(quote(text, safe=_SAFE)) if text else "%2F"


def _fit(name: str) -> str:
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    return hashlib.sha256(name.encode()).hexdigest()[:HASHED_NAME_CHARS]


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
