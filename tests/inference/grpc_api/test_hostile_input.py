"""Hostile input on the real service: bodies that are not protobuf, NULs, unknown enum values
and decompression bombs answer INVALID_ARGUMENT, never INTERNAL or UNKNOWN."""

from __future__ import annotations

import contextlib
import struct
import zlib

import grpc
import pytest_asyncio

from spoton.v1 import catalog_pb2, inference_pb2, inference_pb2_grpc, tasks_pb2

NOT_PROTOBUF = b"\xff\xff\xff\xff"
ENV_ID = "hostile-env"


def png_header(width: int, height: int) -> bytes:
    """A PNG's signature and IHDR announcing width x height, with no pixel data after it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + crc


@pytest_asyncio.fixture(scope="module")
async def inference(channel) -> inference_pb2_grpc.InferenceServiceStub:
    return inference_pb2_grpc.InferenceServiceStub(channel)


@pytest_asyncio.fixture(scope="module")
async def environment(register) -> str:
    return (await register(ENV_ID)).environment_id


async def test_a_unary_body_that_is_not_protobuf_is_invalid_argument(channel, rpc_error):
    code, details = await rpc_error(channel.unary_unary("/spoton.v1.TaskService/GetTask")(NOT_PROTOBUF))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid spoton.v1.GetTaskRequest" in details


async def test_list_tasks_refuses_a_nul_in_the_environment_and_an_unknown_state(tasks, rpc_error):
    code, details = await rpc_error(tasks.ListTasks(tasks_pb2.ListTasksRequest(environment_id="a\x00b")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "environment_id contains a NUL" in details
    code, details = await rpc_error(tasks.ListTasks(tasks_pb2.ListTasksRequest(state=42)))  # type: ignore[arg-type]
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "state is 42" in details
    listed = await tasks.ListTasks(tasks_pb2.ListTasksRequest(state=tasks_pb2.TASK_STATE_COMPLETED))
    assert all(t.state == tasks_pb2.TASK_STATE_COMPLETED for t in listed.tasks)


async def test_detect_refuses_a_png_bomb_from_its_header(inference, live_service, rpc_error):
    bomb = png_header(16000, 16000)  # 33 bytes announcing 256 Mpx
    code, details = await rpc_error(inference.Detect(inference_pb2.DetectRequest(encoded=bomb), timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    limit = live_service.settings.max_image_pixels
    assert "16000x16000" in details and f"{limit:,}" in details


async def test_detect_refuses_raw_frames_over_the_limit_or_of_the_wrong_length(inference, rpc_error):
    huge = inference_pb2.RawImage(data=b"", width=100_000, height=100_000)
    code, details = await rpc_error(inference.Detect(inference_pb2.DetectRequest(raw=huge)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "100000x100000" in details
    short = inference_pb2.RawImage(data=b"\0" * 10, width=4, height=4)
    code, details = await rpc_error(inference.Detect(inference_pb2.DetectRequest(raw=short)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "expected width*height*3 = 48" in details


async def test_stream_frames_refuses_a_bomb_and_a_body_that_is_not_protobuf_mid_stream(
    channel, inference, environment, rpc_error
):
    bomb = inference_pb2.StreamFramesRequest(
        environment_id=environment, camera_id="c1", encoded=png_header(16000, 16000)
    )
    call = inference.StreamFrames(iter([bomb]))
    code, details = await rpc_error(call.read())
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "frame 0" in details and "16000x16000" in details

    raw = inference_pb2.RawImage(data=b"\0" * 64 * 48 * 3, width=64, height=48)
    good = inference_pb2.StreamFramesRequest(environment_id=environment, camera_id="c1", raw=raw)
    call = channel.stream_stream("/spoton.v1.InferenceService/StreamFrames")()
    await call.write(good.SerializeToString())
    answered = inference_pb2.StreamFramesResponse.FromString(await call.read())
    assert answered.sequence == 0 and (answered.width, answered.height) == (64, 48)
    await call.write(NOT_PROTOBUF)
    code, details = await rpc_error(call.read())
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "StreamFramesRequest" in details


async def test_paths_and_urls_that_cannot_be_opened_are_invalid_argument(catalog, rpc_error):
    for path in ("x" * 5000, "~no-such-user-here/env"):  # a name too long; a home that does not exist
        request = catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=path)
        code, details = await rpc_error(catalog.RegisterEnvironmentFromDirectory(request))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "is not an environment directory" in details
    request = catalog_pb2.TestCameraConnectionRequest(source_url="http://[::1")
    code, details = await rpc_error(catalog.TestCameraConnection(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not a valid URL" in details


async def test_watching_from_past_any_sequence_is_out_of_range(tasks, environment, rpc_error):
    task = (await tasks.StartTask(tasks_pb2.StartTaskRequest(environment_id=environment))).task
    try:
        watch = tasks.WatchTask(tasks_pb2.WatchTaskRequest(task_id=task.task_id, after_sequence=2**64 - 1))
        code, details = await rpc_error(watch.read())
        assert code == grpc.StatusCode.OUT_OF_RANGE and "past the newest event" in details
    finally:
        cancel = tasks_pb2.ControlTaskRequest(task_id=task.task_id, action=tasks_pb2.TASK_ACTION_CANCEL)
        with contextlib.suppress(grpc.aio.AioRpcError):  # FAILED_PRECONDITION once it has finished
            await tasks.ControlTask(cancel)
