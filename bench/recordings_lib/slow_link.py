"""A TCP proxy with a bandwidth limit: an S3 server as it would be over a slower network link.

Every connection through it shares one token bucket for what the server sends back (the
direction downloads take), so parallel downloads share the link as they would share a real one.

    async with SlowLink(("127.0.0.1", 9000), bytes_per_s=4_000_000) as port:
        ...  # an S3 client pointed at http://127.0.0.1:<port> downloads at 4 MB/s in all
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

from spoton_inference.embedded.ports import LOOPBACK

# Bytes moved per read; small enough that the rate is smooth at a few MB/s.
CHUNK_BYTES = 16 * 1024
# What the link lets through at once after a quiet spell: a few reads, not a second's worth (an
# idle link would otherwise pass a whole small batch at loopback speed).
BURST_BYTES = 4 * CHUNK_BYTES


class _Bucket:
    """Tokens (bytes) refilled at ``rate`` per second, up to :data:`BURST_BYTES`."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = float(BURST_BYTES)
        self._at = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, n: int) -> None:
        async with self._lock:  # one sender at a time: the link is shared
            now = time.monotonic()
            self._tokens = min(BURST_BYTES, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= n
            if self._tokens < 0:
                await asyncio.sleep(-self._tokens / self.rate)


class SlowLink:
    def __init__(self, target: tuple[str, int], bytes_per_s: float) -> None:
        self._target = target
        self._bucket = _Bucket(bytes_per_s)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> int:
        self._server = await asyncio.start_server(self._connect, LOOPBACK, 0)
        return self._server.sockets[0].getsockname()[1]

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer, None)),
            asyncio.create_task(self._pipe(up_reader, writer, self._bucket)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._pipes.difference_update(pipes)
            for w in (writer, up_writer):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bucket: _Bucket | None) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(CHUNK_BYTES):
                if bucket is not None:
                    await bucket.take(len(data))
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()
