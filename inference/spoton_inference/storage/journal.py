"""A local append-only journal of track-point batches, for when PostgreSQL cannot take them.

Each record is one whole batch: a header (payload length, CRC-32 of id + payload, row count,
batch id) and the pickled rows. Records are read back oldest first; :meth:`Journal.ack`
drops the head once PostgreSQL has it. The offset of the oldest unacknowledged record is
kept in ``<name>.acked`` beside the file, so a restart resumes there; the file is truncated
to empty whenever every record is acknowledged. A record cut short by a crash fails its
length or CRC check on open and is cut off (its rows are reported as lost).

Pickle is safe here: the file is this service's own, in its data directory, written and
read only by it. Every method does blocking file I/O: call them from a worker thread.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import pickle
import struct
import uuid
import zlib
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

# payload length, CRC-32 of batch id + payload, row count, batch id
_HEADER = struct.Struct("<III16s")


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    """Rows written together: all or none, once, under ``batch_id`` (the ledger key)."""

    batch_id: uuid.UUID
    rows: list[tuple]


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    offset: int
    size: int
    rows: int


class Journal:
    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._acked_path = path.with_name(path.name + ".acked")
        self._entries: collections.deque[_Entry] = collections.deque()
        self._rows = 0
        self._end = 0
        self._file: BinaryIO | None = None
        # The head, kept once read: a write that fails is retried with the same batch.
        self._head: Batch | None = None
        # Rows of a torn record found (and cut off) by open().
        self.torn_rows = 0

    @property
    def batches(self) -> int:
        return len(self._entries)

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def size_bytes(self) -> int:
        return self._end

    def open(self) -> None:
        """Open (creating it if needed) and index the records not yet acknowledged."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+b")  # held open for the journal's life
        self._end = self._file.seek(0, os.SEEK_END)
        offset = self._read_acked_offset()
        while offset < self._end:
            entry = self._check(offset)
            if entry is None:
                log.error(
                    "track-point journal %s: the record at byte %d is incomplete or corrupt (a crash "
                    "while it was written); cutting the journal there",
                    self.path,
                    offset,
                )
                self._file.truncate(offset)
                self._end = offset
                break
            self._entries.append(entry)
            self._rows += entry.rows
            offset += entry.size
        if not self._entries:
            self._reset()

    def append(self, batch: Batch) -> bool:
        """Append ``batch`` durably (fsync); False, writing nothing, if it would pass ``max_bytes``."""
        assert self._file is not None, "open() the journal first"
        payload = pickle.dumps(batch.rows, protocol=pickle.HIGHEST_PROTOCOL)
        crc = zlib.crc32(payload, zlib.crc32(batch.batch_id.bytes))
        record = _HEADER.pack(len(payload), crc, len(batch.rows), batch.batch_id.bytes) + payload
        if self._end + len(record) > self.max_bytes:
            return False
        self._file.write(record)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._entries.append(_Entry(self._end, len(record), len(batch.rows)))
        self._rows += len(batch.rows)
        self._end += len(record)
        return True

    def head(self) -> Batch | None:
        """The oldest unacknowledged batch, or None."""
        if not self._entries:
            return None
        if self._head is None:
            assert self._file is not None
            entry = self._entries[0]
            self._file.seek(entry.offset)
            _, _, _, batch_id = _HEADER.unpack(self._file.read(_HEADER.size))
            rows = pickle.loads(self._file.read(entry.size - _HEADER.size))
            self._head = Batch(uuid.UUID(bytes=batch_id), rows)
        return self._head

    def ack(self) -> None:
        """Drop the head: PostgreSQL has it."""
        self._rows -= self._entries.popleft().rows
        self._head = None
        if not self._entries:
            self._reset()
            return
        tmp = self._acked_path.with_name(self._acked_path.name + ".tmp")
        tmp.write_text(str(self._entries[0].offset))
        os.replace(tmp, self._acked_path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _reset(self) -> None:
        """Everything is acknowledged: empty the file."""
        assert self._file is not None
        self._file.truncate(0)
        self._end = 0
        self._acked_path.unlink(missing_ok=True)

    def _read_acked_offset(self) -> int:
        try:
            offset = int(self._acked_path.read_text())
        except (FileNotFoundError, ValueError):
            return 0
        return offset if 0 <= offset <= self._end else 0

    def _check(self, offset: int) -> _Entry | None:
        """The record at ``offset`` if it is whole and intact."""
        assert self._file is not None
        self._file.seek(offset)
        header = self._file.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return None
        length, crc, rows, batch_id = _HEADER.unpack(header)
        payload = self._file.read(length)
        if len(payload) < length or zlib.crc32(payload, zlib.crc32(batch_id)) != crc:
            # A whole header with a short payload is a torn write: its count is right.
            self.torn_rows += rows if len(payload) < length else 0
            return None
        return _Entry(offset, _HEADER.size + length, rows)
