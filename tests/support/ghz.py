"""ghz, the shared gRPC load tester (``../shared/tools/ghz``, see its README), run by the tests.

``await ghz_report(target, "spoton.v1.SystemService/GetHealth", "-d", "{}", calls=200)`` is
ghz's JSON report (``-O json``), whose ``statusCodeDistribution`` counts every call's status.
"""

from __future__ import annotations

import asyncio
import json

from spoton_inference.settings import REPO_ROOT

GHZ = REPO_ROOT.parent / "shared" / "tools" / "ghz"
PROTOSET = REPO_ROOT / "proto" / "spoton.protoset"
# ghz's schema sources: server reflection (no flag), or the shipped protoset.
REFLECTION: tuple[str, ...] = ()
FROM_PROTOSET: tuple[str, ...] = ("--protoset", str(PROTOSET))


async def ghz_report(
    target: str,
    call: str,
    *request: str,
    calls: int,
    concurrency: int,
    schema: tuple[str, ...] = FROM_PROTOSET,
    timeout_s: float = 60.0,
) -> dict:
    """One ghz run of ``call`` (``request``: its data and metadata flags) against ``target``."""
    process = await asyncio.create_subprocess_exec(
        str(GHZ),
        "--insecure",
        *schema,
        "--call",
        call,
        *request,
        "-n",
        str(calls),
        "-c",
        str(concurrency),
        "-O",
        "json",
        target,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    assert out, err.decode()
    return json.loads(out)
