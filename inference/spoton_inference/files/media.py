"""Publishing files under the media root, which the facade serves with HTTP Range.

Files are hard-linked when the media root is on the same filesystem (no copy of a video),
else copied; either way through a temporary name, so a URL never serves half a file.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> src = root / "in.txt"; _ = src.write_text("hi")
    >>> MediaRoot(root / "media", "/api/v1/media").publish(src, Path("envs", "a.txt"))
    '/api/v1/media/envs/a.txt'

Videos are published browser-playable (:meth:`MediaRoot.publish_video`): one that is H.264 in
MP4 with faststart as it is, any other its copy from :class:`PlayableVideos`, a cache under the
data directory that makes each copy once (remuxed or transcoded by
``files/browser_video.py``), a bounded number at a time, and keeps the most recently used
ones within a size limit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import queue
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from spoton_inference.files.browser_video import Conversion, Stopped, Verdict, make_playable, playability

log = logging.getLogger(__name__)
T = TypeVar("T")
# A copy being written is named <name>.part, so no reader ever sees half a file.
PART_SUFFIX = ".part"
# Under the data directory: the browser-playable copies (Settings.media).
MEDIA_CACHE_DIR = "media-cache"


@dataclasses.dataclass(frozen=True, slots=True)
class MediaRoot:
    root: Path
    url_prefix: str
    # Where browser-playable copies of videos come from; None publishes videos as they are.
    videos: PlayableVideos | None = None

    def publish(self, src: Path, rel: Path, *, replace: bool = False, copy: bool = False) -> str:
        """Make ``src`` servable at ``rel``; returns its URL. Kept as is unless ``replace``;
        ``copy`` always copies (``src`` keeps a single link)."""
        dst = self.root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if replace or not dst.exists():
            tmp = dst.with_name(dst.name + ".part")
            tmp.unlink(missing_ok=True)
            try:
                if copy:
                    raise OSError("copy asked for")
                os.link(src, tmp)
            except OSError:  # another filesystem: copy instead
                shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        return self.url(rel)

    async def publish_video(self, src: Path, rel: Path) -> str:
        """:meth:`publish` a browser-playable version of the video ``src`` (made now, or awaited
        while it is being made); returns its URL. A video that cannot be made playable is
        published as it is (and logged): the task still runs on it."""
        playable = src
        if self.videos is not None:
            try:
                playable = await self.videos.playable(src)
            except Exception as exc:
                log.warning("%s could not be made playable in browsers (%s); publishing it as it is", src, exc)
        return await asyncio.to_thread(self.publish, playable, rel)

    def prefetch_video(self, src: Path) -> None:
        """Start making ``src`` browser-playable in the background, so a later
        :meth:`publish_video` of it does not wait (a task does this for the batch it prefetched)."""
        if self.videos is not None:
            self.videos.prefetch(src)

    def unpublish(self, rel: Path) -> None:
        """Serve nothing under ``rel`` any more (a file or a whole directory)."""
        target = self.root / rel
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)

    def url(self, rel: Path) -> str:
        return f"{self.url_prefix}/{rel.as_posix()}"


class PlayableVideos:
    """Browser-playable copies of videos, made by at most ``workers`` threads at once and kept in
    ``directory`` (LRU, ``max_bytes`` in all: the newest copy is kept even when larger).

    A copy is named by the source's identity (path, inode, size, modification time), so a
    video replaced by another gets a new copy, and the same video asked for twice (a task
    start while its registration's conversion runs) is converted once. Conversions run in
    daemon threads: a service that stops leaves at most a ``.part`` file, which the next
    conversion of that video overwrites.

    Example:
        >>> import tempfile
        >>> videos = PlayableVideos(Path(tempfile.mkdtemp()), max_bytes=10**9, workers=1)
        >>> videos.cached(Path("/nonexistent.avi")) is None
        True
    """

    def __init__(self, directory: Path, *, max_bytes: int, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"at least one conversion thread is needed, got {workers} (SPOTON_MEDIA_CONVERT_WORKERS)")
        self.directory = directory
        self.max_bytes = max_bytes
        self._queue: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._in_flight: dict[str, concurrent.futures.Future[Path]] = {}
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._work, name=f"browser-video-{i}", daemon=True) for i in range(workers)
        ]
        self._started = False

    async def playable(self, src: Path) -> Path:
        """``src`` itself when browsers play it as it is, else its playable copy (made now if it
        is not in the cache; a conversion already under way is awaited, never repeated)."""
        ready = await asyncio.to_thread(self._ready, src)
        if ready is not None:
            return ready
        # Shielded: a caller that goes away must not cancel a conversion others may wait on.
        return await asyncio.shield(asyncio.wrap_future(self.prefetch(src)))

    def prefetch(self, src: Path) -> concurrent.futures.Future[Path]:
        """Start making ``src`` playable in the background (or join the conversion under way);
        returns at once, with the future of what :meth:`playable` returns."""
        key = str(src)
        with self._lock:
            future = self._in_flight.get(key)
            if future is None:
                future = self._in_flight[key] = concurrent.futures.Future()
                future.add_done_callback(functools.partial(self._done, key))
                self._submit(future, functools.partial(self._make, src))
        return future

    async def convert_in_place(self, path: Path) -> Conversion | None:
        """Replace the video ``path`` by its playable version (the file keeps its name; the
        original is gone) in one of the conversion threads; ``None`` when it already plays.
        Cancelling stops the conversion at its next frame and keeps the original."""
        if await asyncio.to_thread(playability, path) is Verdict.PLAYABLE:
            return None
        stop = threading.Event()
        future: concurrent.futures.Future[Conversion] = concurrent.futures.Future()
        with self._lock:
            self._submit(future, functools.partial(_convert, path, path, path.with_name(path.name + PART_SUFFIX), stop))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            stop.set()  # a running conversion ends at its next frame and removes its partial file
            raise

    def cached(self, src: Path) -> Path | None:
        """The cached copy of ``src`` (marked as just used), or ``None``."""
        try:
            copy = self.directory / f"{_identity(src)}.mp4"
            os.utime(copy)
        except OSError:  # no source, or no copy yet
            return None
        return copy

    def _ready(self, src: Path) -> Path | None:
        """What :meth:`playable` can answer without converting: ``src`` or its cached copy."""
        cached = self.cached(src)
        if cached is not None:
            return cached
        return src if playability(src) is Verdict.PLAYABLE else None

    def _submit(self, future: concurrent.futures.Future[T], work: Callable[[], T]) -> None:
        """Queue ``work`` for the conversion threads (started on first use); hold ``_lock``."""
        self._queue.put((future, work))
        if not self._started:
            self._started = True
            for worker in self._workers:
                worker.start()

    def _work(self) -> None:
        while True:
            future, work = self._queue.get()
            if not future.set_running_or_notify_cancel():  # its caller went away while it waited
                continue
            try:
                future.set_result(work())
            except BaseException as exc:  # handed to whoever waits; the worker goes on
                if not isinstance(exc, Stopped):
                    log.warning("a video could not be made playable in browsers: %s", exc)
                future.set_exception(exc)

    def _make(self, src: Path) -> Path:
        ready = self._ready(src)
        if ready is not None:
            return ready
        copy = self.directory / f"{_identity(src)}.mp4"
        self.directory.mkdir(parents=True, exist_ok=True)
        made = _convert(src, copy, copy.with_name(copy.name + PART_SUFFIX), None)
        log.info(
            "%s made playable in browsers (%s, %d frames, %.0f frames/s) as %s",
            src,
            made.verdict.value,
            made.frames,
            made.frames_per_second,
            copy.name,
        )
        self._evict(keep=copy)
        return copy

    def _evict(self, keep: Path) -> None:
        """Remove the least recently used copies until the rest fit in ``max_bytes``. Published
        copies are hard links, so removing a cache entry never takes a served file away."""
        entries = []
        for path in self.directory.glob("*.mp4"):
            with contextlib.suppress(OSError):
                stat = path.stat()
                entries.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size

    def _done(self, key: str, future: concurrent.futures.Future[Path]) -> None:
        with self._lock:
            if self._in_flight.get(key) is future:
                del self._in_flight[key]


@functools.cache
def shared_videos(directory: Path, max_bytes: int, workers: int) -> PlayableVideos:
    """One :class:`PlayableVideos` per directory in this process, so every part of the service
    (catalogue, tasks, jobs) shares its conversions and its bound on them."""
    return PlayableVideos(directory, max_bytes=max_bytes, workers=workers)


def _identity(src: Path) -> str:
    """A name for ``src``'s current content: its path, inode, size and modification time."""
    stat = src.stat()
    ident = f"{src.resolve()}|{stat.st_dev}|{stat.st_ino}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def _convert(src: Path, dst: Path, part: Path, stop: threading.Event | None) -> Conversion:
    """:func:`make_playable` into ``part``, then renamed to ``dst``; ``part`` never outlives a failure."""
    try:
        made = make_playable(src, part, stop=stop)
        os.replace(part, dst)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return made
