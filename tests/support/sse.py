"""Reading a Server-Sent Events response as a browser does: one dict of fields per event block,
comment lines (heartbeats) skipped.

    async with http.stream("GET", url) as response:
        async for block in sse_blocks(response):
            block["id"], block["event"], block["data"]
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx


async def sse_blocks(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """Each block of ``response``'s stream with a field in it, as ``{field: value}``."""
    block: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue
        if line:
            key, value = line.split(": ", 1)
            block[key] = value
        elif block:
            yield block
            block = {}
