"""An upload streamed to disk chunk by chunk, never held whole, with a size limit.

The file exists only while the upload is in progress or once it was accepted: any failure,
the limit, or a cancelled call (the client went away) removes it before the error propagates.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from spoton_inference.core.errors import InvalidArgument, ResourceExhausted


async def receive_to_file(chunks: AsyncIterator[bytes], path: Path, limit_bytes: int) -> int:
    """Write ``chunks`` to ``path``; returns the size. ResourceExhausted past ``limit_bytes``."""
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
                # Chunks are bounded by the gRPC message size, so a write is short.
                out.write(chunk)
        if size == 0:
            raise InvalidArgument("the upload is empty: send the file's bytes as `chunk` messages after the metadata")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return size
