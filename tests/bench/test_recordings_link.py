"""The recordings bench's slow link: what passes through arrives whole, in both directions,
and no faster than the link's rate (the bench's figure rests on it)."""

from __future__ import annotations

import asyncio
import time

import pytest
from recordings_lib.slow_link import BURST_BYTES, SlowLink

from spoton_inference.embedded.ports import LOOPBACK

pytestmark = pytest.mark.timeout(30)
RATE = 2_000_000  # bytes/s
PAYLOAD = 400_000


async def test_bytes_pass_whole_and_no_faster_than_the_link():
    payload = bytes(range(256)) * (PAYLOAD // 256)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readexactly(5)
        writer.write(request + payload)  # the answer, the direction the link limits
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with SlowLink((LOOPBACK, port), RATE) as link_port:
            reader, writer = await asyncio.open_connection(LOOPBACK, link_port)
            started = time.monotonic()
            writer.write(b"hello")
            await writer.drain()
            got = await reader.read(-1)
            elapsed = time.monotonic() - started
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert got == b"hello" + payload
    # A lower bound only: a loaded machine is slower, never faster, than the link allows.
    assert elapsed >= (len(got) - BURST_BYTES) / RATE * 0.9
