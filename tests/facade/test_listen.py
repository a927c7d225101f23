"""``python -m spoton_facade`` listens where SPOTON_BIND_HOST and SPOTON_FACADE_PORT say.

127.0.0.2 is a loopback address too, but a server bound to 127.0.0.1 alone does not answer
on it, while one bound to every interface (0.0.0.0) does: that tells the two binds apart
without sending anything off this machine.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from spoton_inference.embedded.ports import pick_free_port
from spoton_inference.embedded.probes import tcp_accepts

STARTUP_S = 60.0
OTHER_LOOPBACK = "127.0.0.2"


@contextmanager
def facade(data_dir: Path, **env: str) -> Iterator[int]:
    """The facade running with ``env`` on a free port; yields the port once it accepts."""
    port = pick_free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spoton_facade"],
        env={
            # A developer's own listen settings must not decide the test.
            **{k: v for k, v in os.environ.items() if k not in ("SPOTON_BIND_HOST", "SPOTON_FACADE_HOST")},
            **env,
            "SPOTON_FACADE_PORT": str(port),
            "SPOTON_DATA_DIR": str(data_dir),
            # Nothing listens there: the facade starts without its inference service.
            "SPOTON_INFERENCE_TARGET": f"127.0.0.1:{pick_free_port()}",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def _until_accepting(port: int) -> None:
    async with asyncio.timeout(STARTUP_S):
        while True:
            if await tcp_accepts("127.0.0.1", port, 1.0):
                return
            await asyncio.sleep(0.2)


@pytest.mark.parametrize(("bind_host", "reachable_elsewhere"), [(None, False), ("0.0.0.0", True)])
async def test_the_facade_listens_on_the_bind_host(tmp_path: Path, bind_host: str | None, reachable_elsewhere: bool):
    env = {"SPOTON_BIND_HOST": bind_host} if bind_host else {}
    with facade(tmp_path, **env) as port:
        await _until_accepting(port)
        assert await tcp_accepts(OTHER_LOOPBACK, port, 1.0) is reachable_elsewhere
