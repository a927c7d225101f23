"""Uploads streamed to disk chunk by chunk, never held whole, with a size limit, a cap on how
many stream at once, and a check that they fit on the disk.

The file exists only while the upload is in progress or once it was accepted: any failure,
the limit, or a cancelled call (the client went away) removes it before the error propagates.

Disk space. An upload is admitted when its announced size fits in the free space less the
reserve (SPOTON_UPLOAD_DISK_RESERVE_BYTES) and less what the uploads already streaming announced
and have not written yet. As the bytes arrive the free space is looked at again, so an upload
of unknown size (or a disk filled by something else) is stopped once the reserve is reached.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from spoton_inference.domain.errors import InsufficientStorage, InvalidArgument, ResourceExhausted, TooManyUploads

# How often (in bytes written) a streaming upload looks at the free space again: a statvfs per
# 16 MiB costs nothing, and the reserve absorbs the overshoot.
SPACE_CHECK_INTERVAL_BYTES = 16 * 1024 * 1024


@dataclasses.dataclass(eq=False, slots=True)
class UploadSlot:
    """One admitted upload: what it announced (0: unknown) and has written so far."""

    gate: UploadGate
    declared_bytes: int
    written_bytes: int = 0
    _next_check: int = SPACE_CHECK_INTERVAL_BYTES

    @property
    def pending_bytes(self) -> int:
        """Announced but not yet written: space the upload will still take."""
        return max(self.declared_bytes - self.written_bytes, 0)

    def wrote(self, n: int) -> None:
        self.written_bytes += n
        if self.declared_bytes and self.written_bytes > self.declared_bytes:
            raise InvalidArgument(
                f"the upload is longer than the {self.declared_bytes} bytes its size_bytes announced; "
                "send the file's real size, or 0 when it is not known"
            )
        if self.written_bytes >= self._next_check:
            self._next_check = self.written_bytes + SPACE_CHECK_INTERVAL_BYTES
            self.gate.check_space(self)


@dataclasses.dataclass(eq=False, slots=True)
class UploadGate:
    """Admits uploads into ``directory``: at most ``max_concurrent`` at once, each only while it
    leaves ``reserve_bytes`` free on the disk."""

    directory: Path
    max_concurrent: int
    reserve_bytes: int
    _active: list[UploadSlot] = dataclasses.field(default_factory=list)

    @contextlib.contextmanager
    def admit(self, declared_bytes: int) -> Iterator[UploadSlot]:
        """A slot for one upload, held for the ``with`` block; refused with TooManyUploads or
        InsufficientStorage (both RESOURCE_EXHAUSTED)."""
        if len(self._active) >= self.max_concurrent:
            raise TooManyUploads(
                f"{len(self._active)} uploads are streaming already, the most this server takes at once "
                "(SPOTON_MAX_CONCURRENT_UPLOADS); retry in a little while"
            )
        slot = UploadSlot(self, declared_bytes)
        self.check_space(slot)
        self._active.append(slot)
        try:
            yield slot
        finally:
            self._active.remove(slot)

    def check_space(self, slot: UploadSlot) -> None:
        """InsufficientStorage when ``slot``'s remaining bytes would eat into the reserve."""
        self.directory.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.directory).free
        promised = sum(s.pending_bytes for s in self._active if s is not slot)
        room = free - self.reserve_bytes - promised
        if slot.pending_bytes > room or room < 0:
            need = f"{slot.declared_bytes} bytes" if slot.declared_bytes else "more space"
            raise InsufficientStorage(
                f"not enough disk space for the upload: it needs {need}, and {free} bytes are free, of "
                f"which {self.reserve_bytes} are kept in reserve (SPOTON_UPLOAD_DISK_RESERVE_BYTES) and "
                f"{promised} promised to other uploads; free some space or retry later"
            )


async def receive_to_file(
    chunks: AsyncIterator[bytes], path: Path, limit_bytes: int, slot: UploadSlot | None = None
) -> int:
    """Write ``chunks`` to ``path``; returns the size. ResourceExhausted past ``limit_bytes``;
    with ``slot``, each chunk is counted in it (and refused when the disk fills up)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with path.open("xb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit_bytes:
                    raise ResourceExhausted(
                        f"the upload is larger than the limit of {limit_bytes} bytes "
                        "(SPOTON_JOB_MAX_UPLOAD_BYTES); send a shorter or more compressed video"
                    )
                if slot is not None:
                    slot.wrote(len(chunk))
                # Chunks are bounded by the gRPC message size, so a write is short.
                out.write(chunk)
        if size == 0:
            raise InvalidArgument("the upload is empty: send the file's bytes as `chunk` messages after the metadata")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return size
