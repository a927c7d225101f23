"""ghz, as load testers drive the service: GetHealth and Detect through server reflection and
through the shipped protoset, a few hundred calls each, and not one may fail.

ghz is the shared tool (``../shared/tools/ghz``, see its README); its JSON report
(``-O json``) counts every call's status.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.auth import make_key
from support.ghz import FROM_PROTOSET, GHZ, REFLECTION, ghz_report

from spoton.v1 import inference_pb2

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not GHZ.is_file(), reason="the shared ghz is not beside the repository"),
]
SCHEMAS = {"reflection": REFLECTION, "protoset": FROM_PROTOSET}
HEALTH_CALLS, DETECT_CALLS = 300, 200
CONCURRENCY = 4


async def _ghz(target: str, key: str, call: str, calls: int, schema: tuple[str, ...], *data: str) -> dict:
    metadata = json.dumps({"authorization": f"Bearer {key}"})
    request = (*(data or ("-d", "{}")), "--metadata", metadata)
    return await ghz_report(target, call, *request, calls=calls, concurrency=CONCURRENCY, schema=schema, timeout_s=240)


def _detect_request(directory: Path) -> Path:
    """A serialized DetectRequest holding a 640x480 JPEG, for ghz's ``--binary-file``."""
    frame = np.zeros((480, 640, 3), np.uint8)
    cv2.rectangle(frame, (280, 120), (360, 400), (200, 180, 160), -1)  # something to look at
    ok, encoded = cv2.imencode(".jpg", frame)
    assert ok
    path = directory / "detect.bin"
    path.write_bytes(inference_pb2.DetectRequest(encoded=encoded.tobytes()).SerializeToString())
    return path


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_get_health_and_detect_under_ghz_answer_every_call(live_service, tmp_path, schema):
    operator = await make_key(live_service.target, "operator")  # Detect takes an operator
    health = await _ghz(
        live_service.target, operator, "spoton.v1.SystemService/GetHealth", HEALTH_CALLS, SCHEMAS[schema]
    )
    assert health["statusCodeDistribution"] == {"OK": HEALTH_CALLS}, health.get("errorDistribution")

    request = ("--binary-file", str(_detect_request(tmp_path)))
    detect = await _ghz(
        live_service.target, operator, "spoton.v1.InferenceService/Detect", DETECT_CALLS, SCHEMAS[schema], *request
    )
    assert detect["statusCodeDistribution"] == {"OK": DETECT_CALLS}, detect.get("errorDistribution")
