"""The README's ghz example works with an API key in metadata, and is refused without one.

ghz is the shared tool (``../shared/tools/ghz``, see its README); it reads the shipped
protoset, as a load tester in any language would.
"""

from __future__ import annotations

import json

import pytest
from support.auth import make_key
from support.ghz import FROM_PROTOSET, GHZ, REFLECTION, ghz_report

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CALLS = 200


async def _ghz(target: str, call: str, *extra: str, schema: tuple[str, ...] = FROM_PROTOSET) -> dict:
    return await ghz_report(target, call, "-d", "{}", *extra, calls=CALLS, concurrency=10, schema=schema)


@pytest.mark.skipif(not GHZ.is_file(), reason="the shared ghz is not beside the repository")
async def test_ghz_with_a_viewer_key_in_metadata_is_answered_and_without_one_is_refused(live_service):
    viewer = await make_key(live_service.target, "viewer")
    metadata = json.dumps({"authorization": f"Bearer {viewer}"})
    report = await _ghz(live_service.target, "spoton.v1.TaskService/ListTasks", "--metadata", metadata)
    assert report["statusCodeDistribution"] == {"OK": CALLS}, report.get("errorDistribution")

    refused = await _ghz(live_service.target, "spoton.v1.TaskService/ListTasks")
    assert refused["statusCodeDistribution"] == {"Unauthenticated": CALLS}

    # Probes and discovery stay open, as the README says: the standard health service, found
    # through reflection, needs no key.
    health = await _ghz(live_service.target, "grpc.health.v1.Health/Check", schema=REFLECTION)
    assert health["statusCodeDistribution"] == {"OK": CALLS}
