"""Every spoton.v1 RPC, fuzzed: random bytes, truncated messages, wrong wire types and random
field values generated from the descriptors, against a real inference service on the
embedded Triton, PostgreSQL and Redis. Every answer must be a status the contract documents
(never INTERNAL or UNKNOWN), and the service must still be healthy afterwards.

Run with ``-s`` to see the count of answers per status. The generator is seeded, so a
failure names the seed, the method and the body, and reproduces.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import math
import os
import random
import struct
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import cv2
import grpc
import numpy as np
import pytest
import pytest_asyncio
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import DecodeError, Message
from support.auth import authed_channel

from spoton.v1 import (
    analytics_pb2,
    cameras_pb2,
    catalog_pb2,
    inference_pb2,
    jobs_pb2,
    system_pb2,
    system_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SEED = int(os.environ.get("SPOTON_FUZZ_SEED", "1515"))
# Generated request messages per RPC: 48 RPCs x 250 = 12,000 in all.
MESSAGES_PER_RPC = 250
MIN_MESSAGES = 10_000
IN_FLIGHT = 12
UNARY_DEADLINE_S = 15.0
# Streams that the server keeps open (a watch on a live task) are cut after this long, or
# after a few answers: the fuzz is after their first answers, not their whole life.
STREAM_DEADLINE_S = 2.0
STREAM_ANSWERS_READ = 3
MAX_DEPTH = 4
POOL_MAX = 64
GRPC_CLIENT_WRITE_FAILED = "Internal error from Core"
CLIENT_LOST_STATUS_RETRIES = 5

ACCEPTABLE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE,
}
# Only streams the fuzz itself cuts may end with these.
CUT = {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
SERVICE_MODULES = (catalog_pb2, tasks_pb2, inference_pb2, system_pb2, analytics_pb2, jobs_pb2, cameras_pb2)
ENV_ID = "fuzz-env"
TASK_STOPPED = {tasks_pb2.TASK_STATE_COMPLETED, tasks_pb2.TASK_STATE_FAILED, tasks_pb2.TASK_STATE_CANCELLED}
JOB_STOPPED = {jobs_pb2.JOB_STATE_COMPLETED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED}

INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
FLOATS = (0.0, -0.0, 0.5, 1.0, -1.0, 25.0, 1e-9, 1e30, -1e30, math.inf, -math.inf, math.nan, 3.4e38)
# Wire type each field type is encoded with; the fuzz sends the others.
VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
FIXED64_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64}
FIXED32_TYPES = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32}
LENGTH_TYPES = {FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE}


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def _jpeg(width: int, height: int) -> bytes:
    return cv2.imencode(".jpg", np.full((height, width, 3), 90, np.uint8))[1].tobytes()


def rpcs() -> list[MethodDescriptor]:
    return [m for module in SERVICE_MODULES for s in module.DESCRIPTOR.services_by_name.values() for m in s.methods]


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


class Generator:
    """Random request bodies for a message type, from its descriptor."""

    def __init__(self, rng: random.Random, pool: dict[str, list[str]], env_dir: str) -> None:
        self.rng = rng
        self.pool = pool  # ids the service answered with, by field name, for deeper paths
        self.env_dir = env_dir
        self.plausible = False  # values a client could well send, to reach past the first checks
        self.images = [b"", _png_header(16000, 16000), _png_header(0, 7), _jpeg(64, 48), b"\xff\xd8\xff"]

    # -- field values ---------------------------------------------------------------------

    def text(self, name: str) -> str:
        known = self.pool.get(name)
        if known and self.rng.random() < (0.7 if self.plausible else 0.3):
            return self.rng.choice(known)
        if self.plausible:
            return self._plausible_text(name)
        choices: list[Callable[[], str]] = [
            lambda: "",
            lambda: ENV_ID,
            lambda: self.rng.choice(("c1", "c2")),
            lambda: str(uuid.UUID(int=self.rng.getrandbits(128))),
            lambda: "a\x00b",
            lambda: "".join(
                chr(self.rng.choice((self.rng.randrange(32, 127), self.rng.randrange(0xA0, 0xD7FF), 0x1F600)))
                for _ in range(self.rng.randrange(1, 24))
            ),
            lambda: "x" * self.rng.choice((256, 5000)),
            lambda: self.rng.choice(
                ("4294967296", "-1", "1e309", "NaN", "0", "%00", "' or 1=1 --", "../../etc/passwd")
            ),
            lambda: self.rng.choice(
                ("/", "/nonexistent", self.env_dir, "rtsp://127.0.0.1:1/x", "http://[::1", "file:///etc/passwd")
            ),
            lambda: self.rng.choice(("TASK_STATE_COMPLETED", "completed", "application/json", "json", "csv", "video")),
        ]
        return self.rng.choice(choices)()

    def _plausible_text(self, name: str) -> str:
        if name == "environment_id":
            return ENV_ID
        if name == "camera_id" or name == "camera_ids":
            return self.rng.choice(("c1", "c2"))
        if name.endswith("id") or name.endswith("ids"):
            return str(uuid.UUID(int=self.rng.getrandbits(128)))
        if name == "path":
            return self.env_dir
        return self.rng.choice(("fuzz", "Entrance", "north door", "c1", "json", "csv", "video", "events", "tracks"))

    def integer(self, kind: int) -> int:
        low, high = INT_RANGES[kind]
        if self.plausible:
            return self.rng.randint(max(low, 0), 100)
        return self.rng.choice((0, 1, low, high, self.rng.randint(low, high), self.rng.randint(max(low, -5), 100)))

    def scalar(self, field: FieldDescriptor) -> Any:
        kind = field.type
        if kind in INT_RANGES:
            return self.integer(kind)
        if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            if self.plausible:
                return self.rng.uniform(0, 100)
            return self.rng.choice((*FLOATS, self.rng.uniform(-1e6, 1e6)))
        if kind == FieldDescriptor.TYPE_BOOL:
            return self.rng.random() < 0.5
        if kind == FieldDescriptor.TYPE_STRING:
            return self.text(field.name)
        if kind == FieldDescriptor.TYPE_BYTES:
            if self.rng.random() < 0.5:
                return self.rng.choice(self.images)
            return self.rng.randbytes(self.rng.choice((1, 16, 300)))
        if kind == FieldDescriptor.TYPE_ENUM:
            known = [v.number for v in field.enum_type.values]
            if self.plausible:
                return self.rng.choice(known)
            return self.rng.choice((*known, *known, 99, -1, 2**31 - 1))
        raise AssertionError(f"no generator for field type {kind}")

    # -- messages -------------------------------------------------------------------------

    def fill(self, message: Message, depth: int = 0) -> Message:
        if message.DESCRIPTOR.full_name == "google.protobuf.Timestamp" and self.plausible:
            message.seconds = self.rng.randrange(1_600_000_000, 1_800_000_000)  # type: ignore[attr-defined]
            return message
        if message.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
            message.seconds = self.rng.choice((0, 1_700_000_000, -1, 2**40, -(2**62), 253_402_300_800))  # type: ignore[attr-defined]
            message.nanos = self.rng.choice((0, 999_999_999, -1, 2**31 - 1))  # type: ignore[attr-defined]
            return message
        for field in message.DESCRIPTOR.fields:
            if self.rng.random() < 0.4:
                continue
            self._set(message, field, depth)
        return message

    def _set(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        value = getattr(message, field.name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
            for _ in range(self.rng.randrange(3)):
                key = self.scalar(key_field)
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    if depth < MAX_DEPTH:
                        self.fill(value[key], depth + 1)
                else:
                    value[key] = self.scalar(value_field)
        elif field.is_repeated:
            for _ in range(self.rng.choice((0, 1, 2, 3, 5))):
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    if depth < MAX_DEPTH:
                        self.fill(value.add(), depth + 1)
                else:
                    value.append(self.scalar(field))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth < MAX_DEPTH:
                value.SetInParent()
                self.fill(value, depth + 1)
        else:
            setattr(message, field.name, self.scalar(field))

    def message(self, descriptor: Descriptor) -> Message:
        return self.fill(message_factory.GetMessageClass(descriptor)())

    # -- bodies ---------------------------------------------------------------------------

    def body(self, descriptor: Descriptor, kind: str) -> bytes:
        if kind == "random bytes":
            return self.rng.randbytes(self.rng.choice((0, 1, 2, 5, 17, 64, 300)))
        self.plausible = kind == "plausible fields"
        try:
            valid = self.message(descriptor).SerializeToString()
        finally:
            self.plausible = False
        if kind in ("fields", "plausible fields"):
            return valid
        if kind == "truncated":
            if len(valid) < 2:
                return b"\x0a\x05ab"  # field 1 announces 5 bytes, and 2 follow
            return valid[: self.rng.randrange(1, len(valid))]
        assert kind == "wrong wire type"
        return valid + self._wrong_wire_type(descriptor)

    def _wrong_wire_type(self, descriptor: Descriptor) -> bytes:
        fields = descriptor.fields
        number = self.rng.choice(fields).number if fields else self.rng.randrange(1, 20)
        expected = {VARINT}
        if fields:
            field = descriptor.fields_by_number[number]
            if field.type in LENGTH_TYPES:
                expected = {LENGTH}
            elif field.type in FIXED64_TYPES:
                expected = {FIXED64}
            elif field.type in FIXED32_TYPES:
                expected = {FIXED32}
            if field.is_repeated and field.type not in LENGTH_TYPES:
                expected.add(LENGTH)  # repeated numbers may come packed or one by one
        wire = self.rng.choice(
            [w for w in (VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32, 6, 7) if w not in expected]
        )
        payload = {
            VARINT: _varint(self.rng.getrandbits(64)),
            FIXED64: self.rng.randbytes(8),
            LENGTH: _varint(5) + self.rng.randbytes(self.rng.choice((5, 3))),
            FIXED32: self.rng.randbytes(4),
        }.get(wire, b"")
        return _varint(number << 3 | wire) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


KINDS = ("random bytes", "truncated", "wrong wire type", "fields", "plausible fields", "plausible fields")


@dataclasses.dataclass
class Tally:
    by_status: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    by_method: dict[str, collections.Counter[str]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    messages: int = 0
    client_lost_status: int = 0
    bad: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class FuzzService:
    app: Any
    target: str
    env_dir: str


@pytest_asyncio.fixture(scope="module")
async def fuzz_service(service_settings, live_service) -> AsyncIterator[FuzzService]:
    """A service of its own (database, Redis database, data directory) on live_service's
    Triton, so what the fuzz creates stays out of other tests' way. No camera health checks,
    and a short bound on opening camera sources the fuzz names."""
    from spoton_inference.app import InferenceApp
    from spoton_inference.grpc_server import build_server

    settings = await service_settings(
        "spoton_fuzz", camera_health_interval_s=0.0, source_connect_timeout_s=1.0, job_max_upload_bytes=1024 * 1024
    )
    env_dir = live_service.make_environment(ENV_ID)
    app = await InferenceApp.create(settings)
    server, _ = build_server(app)
    await server.start()
    try:
        await app.warm_up()
        yield FuzzService(app, f"{settings.grpc_host}:{settings.grpc_port}", str(env_dir))
    finally:
        await server.stop(grace=1.0)
        await app.close()


def _harvest(message: Message, pool: dict[str, list[str]]) -> None:
    """Remember the ids in an answer, so later requests can name things that exist."""
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE and not field.message_type.GetOptions().map_entry:
            for item in value if field.is_repeated else [value]:
                _harvest(item, pool)
        elif field.type == FieldDescriptor.TYPE_STRING and field.name.endswith("id") and isinstance(value, str):
            known = pool.setdefault(field.name, [])
            if value and value not in known and len(known) < POOL_MAX:
                known.append(value)


async def _call(
    channel: grpc.aio.Channel, method: MethodDescriptor, bodies: list[bytes], tally: Tally
) -> tuple[grpc.StatusCode, str, list[bytes]]:
    """Send ``bodies`` (one for a unary request) as they are; the status, its details and the
    answers read.

    When a server ends a call while the client is still writing to it, grpc's aio client may
    report its own failed write as INTERNAL "Internal error from Core" instead of the status
    the server sent (a client quirk: no server ever sends that text, ours included). Such a
    call is sent again, and counted.
    """
    for _ in range(CLIENT_LOST_STATUS_RETRIES):
        code, details, answers = await _call_once(channel, method, bodies)
        if not (method.client_streaming and code == grpc.StatusCode.INTERNAL and details == GRPC_CLIENT_WRITE_FAILED):
            break
        tally.client_lost_status += 1
    return code, details, answers


async def _call_once(
    channel: grpc.aio.Channel, method: MethodDescriptor, bodies: list[bytes]
) -> tuple[grpc.StatusCode, str, list[bytes]]:
    path = _path(method)
    try:
        if not method.client_streaming and not method.server_streaming:
            answer = await channel.unary_unary(path)(bodies[0], timeout=UNARY_DEADLINE_S)
            return grpc.StatusCode.OK, "", [answer]
        if not method.client_streaming:
            call = channel.unary_stream(path)(bodies[0], timeout=STREAM_DEADLINE_S)
        elif not method.server_streaming:
            call = channel.stream_unary(path)(iter(bodies), timeout=STREAM_DEADLINE_S)
            return grpc.StatusCode.OK, "", [await call]
        else:
            call = channel.stream_stream(path)(iter(bodies), timeout=STREAM_DEADLINE_S)
        answers: list[bytes] = []
        async for answer in call:
            answers.append(answer)
            if len(answers) >= STREAM_ANSWERS_READ:
                call.cancel()
                return grpc.StatusCode.OK, "", answers
        return await call.code(), await call.details(), answers
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or "", []


async def _stop_what_it_started(channel: grpc.aio.Channel, method: MethodDescriptor, answer: Message) -> None:
    """A task or job the fuzz started is cancelled at once: the fuzz must not pile up work.
    (A start replayed by its idempotency key may answer a task that has stopped already.)"""
    if method.name == "StartTask":
        body = tasks_pb2.ControlTaskRequest(task_id=answer.task.task_id, action=tasks_pb2.TASK_ACTION_CANCEL)  # type: ignore[attr-defined]
        path = "/spoton.v1.TaskService/ControlTask"
    elif method.name == "UploadJob":
        body = jobs_pb2.CancelJobRequest(job_id=answer.job_id)  # type: ignore[attr-defined]
        path = "/spoton.v1.JobService/CancelJob"
    else:
        return
    try:
        await channel.unary_unary(path)(body.SerializeToString(), timeout=UNARY_DEADLINE_S)
    except grpc.aio.AioRpcError as err:
        if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
            raise


def _plan(rng: random.Random) -> Iterator[tuple[MethodDescriptor, list[str]]]:
    """Each RPC MESSAGES_PER_RPC times, in a shuffled order; streams get 1..3 messages each."""
    plan = []
    for method in rpcs():
        sent = 0
        while sent < MESSAGES_PER_RPC:
            count = rng.choice((1, 2, 3)) if method.client_streaming else 1
            plan.append((method, [rng.choice(KINDS) for _ in range(count)]))
            sent += count
    rng.shuffle(plan)
    return iter(plan)


async def test_every_rpc_answers_fuzzed_input_with_a_documented_status(fuzz_service):
    rng = random.Random(SEED)
    pool: dict[str, list[str]] = {}
    generator = Generator(rng, pool, fuzz_service.env_dir)
    tally = Tally()
    plan = _plan(rng)
    started = time.perf_counter()

    async with authed_channel(fuzz_service.target) as channel:

        async def worker() -> None:
            for method, kinds in plan:  # the one iterator, shared by the workers
                bodies = [generator.body(method.input_type, k) for k in kinds]
                code, details, answers = await _call(channel, method, bodies, tally)
                tally.messages += len(bodies)
                name = code.name if code not in CUT or method.server_streaming else f"{code.name} (unary)"
                tally.by_status[name] += 1
                tally.by_method[method.name][name] += 1
                if code not in ACCEPTABLE and not (code in CUT and method.server_streaming):
                    tally.bad.append(f"{method.name} {kinds} -> {code.name} {details!r}: {[b.hex() for b in bodies]}")
                output = message_factory.GetMessageClass(method.output_type)
                for raw in answers:
                    try:
                        answer = output.FromString(raw)
                    except DecodeError:  # cannot be: the server serialised it
                        tally.bad.append(f"{method.name}: an answer that does not parse")
                        continue
                    _harvest(answer, pool)
                    if code == grpc.StatusCode.OK:
                        await _stop_what_it_started(channel, method, answer)

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        elapsed = time.perf_counter() - started

        health = await system_pb2_grpc.SystemServiceStub(channel).GetHealth(system_pb2.GetHealthRequest(), timeout=10)
        leftovers = await _running_work(channel)

    print(
        f"\ngRPC fuzz (seed {SEED}): {tally.messages} messages, {sum(tally.by_status.values())} calls, {elapsed:.1f} s"
    )
    for status, count in tally.by_status.most_common():
        print(f"  {status:<28} {count}")
    internal = tally.by_status["INTERNAL"] + tally.by_status["UNKNOWN"]
    print(f"  INTERNAL or UNKNOWN: {internal}")
    print(f"  streams sent again because the client lost the server's status: {tally.client_lost_status}")
    assert tally.messages >= MIN_MESSAGES
    assert not tally.bad, "\n".join(tally.bad[:20])
    assert len(tally.by_method) == len(rpcs())
    assert health.status in ("healthy", "degraded"), health
    assert not leftovers, leftovers


async def _running_work(channel: grpc.aio.Channel) -> list[str]:
    """Tasks and jobs the fuzz left unfinished, once they have had a moment to stop."""
    tasks = tasks_pb2_grpc.TaskServiceStub(channel)
    list_jobs = channel.unary_unary("/spoton.v1.JobService/ListJobs")
    for _ in range(100):
        listed = await tasks.ListTasks(tasks_pb2.ListTasksRequest(page_size=200), timeout=10)
        running = [
            f"task {t.task_id}: {tasks_pb2.TaskState.Name(t.state)}"
            for t in listed.tasks
            if t.state not in TASK_STOPPED
        ]
        jobs = jobs_pb2.ListJobsResponse.FromString(
            await list_jobs(jobs_pb2.ListJobsRequest(page_size=200).SerializeToString(), timeout=10)
        )
        running += [
            f"job {j.job_id}: {jobs_pb2.JobState.Name(j.state)}" for j in jobs.jobs if j.state not in JOB_STOPPED
        ]
        if not running:
            return []
        await asyncio.sleep(0.1)
    return running
