"""The Go example (clients/go/health) builds offline with Debian's Go toolchain and calls
GetHealth on the real embedded stack with an API key and a deadline.

``clients/go/build.sh`` generates the stubs from proto/ (their import path is the
``go_package`` the .proto files carry) and builds in GOPATH mode against Debian's packaged
grpc-go, with no module proxy. The packages come from ``make go``; without them the test is
skipped, and fails in CI.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from spoton_inference.settings import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BUILD_SCRIPT = REPO_ROOT / "clients" / "go" / "build.sh"
# What build.sh needs from Debian (make go installs them): the toolchain, the protoc plugins
# and grpc-go with golang/protobuf 1.5 (1.3, the other choice Debian offers, cannot decode
# messages protoc-gen-go 1.28 generates).
GO_REQUIREMENTS = (
    Path("/usr/bin/go"),
    Path("/usr/bin/protoc-gen-go"),
    Path("/usr/bin/protoc-gen-go-grpc"),
    Path("/usr/share/gocode/src/google.golang.org/grpc/server.go"),
    Path("/usr/share/gocode/src/github.com/golang/protobuf/proto/registry.go"),
)
# A cold build of grpc-go takes about 30 s on a busy two-core machine; Go's build cache
# (~/.cache/go-build) makes the next ones quick.
BUILD_TIMEOUT_S = 300
CALL_TIMEOUT_S = 30


def _require_go() -> None:
    missing = [str(p) for p in GO_REQUIREMENTS if not p.exists()]
    if missing:
        message = f"Debian's Go packages are missing ({', '.join(missing)}): make go installs them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


async def _run(*argv: str, env: dict[str, str], timeout_s: float) -> tuple[int, str]:
    """``argv``'s exit code and output, run without blocking the event loop the service under
    test answers from."""
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True
    )
    try:
        async with asyncio.timeout(timeout_s):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:  # the whole session: build.sh's go and its compilers too
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_the_go_example_builds_offline_and_calls_get_health(live_service, tmp_path):
    _require_go()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTON_", "GO"))}
    code, output = await _run("sh", str(BUILD_SCRIPT), str(tmp_path / "go"), env=env, timeout_s=BUILD_TIMEOUT_S)
    assert code == 0, output
    binary = output.strip().splitlines()[-1]
    assert Path(binary).is_file(), output

    target = ["-target", live_service.target, "-timeout", "10s"]
    code, output = await _run(
        binary, *target, env={**env, "SPOTON_API_KEY": live_service.api_key}, timeout_s=CALL_TIMEOUT_S
    )
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] in ("status: healthy", "status: degraded", "status: starting"), output
    assert any(line.startswith("  triton: ") for line in lines), output

    code, output = await _run(binary, *target, env={**env, "SPOTON_API_KEY": "spk_0_wrong"}, timeout_s=CALL_TIMEOUT_S)
    assert code == 1, output
    assert "code = Unauthenticated" in output, output
