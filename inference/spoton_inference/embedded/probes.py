"""Tiny async network probes for readiness and liveness checks.

Plain asyncio streams: readiness only needs a status code, and this keeps the probes free
of an HTTP client dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


async def tcp_accepts(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """True when a TCP connection to ``host:port`` succeeds within ``timeout_s``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def http_status(url: str, timeout_s: float = 2.0) -> int:
    """The status code of ``GET url`` (plain HTTP/1.1); raises OSError or TimeoutError."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"

    async def exchange() -> int:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode("ascii"))
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        fields = status_line.split()
        if len(fields) < 2 or not fields[1].isdigit():
            raise OSError(f"malformed HTTP status line from {url}: {status_line!r}")
        return int(fields[1])

    return await asyncio.wait_for(exchange(), timeout_s)


async def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``GET url`` answers 200; connection errors and timeouts count as False."""
    try:
        return await http_status(url, timeout_s) == 200
    except (OSError, TimeoutError):
        return False
