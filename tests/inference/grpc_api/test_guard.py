"""The edge's request guard (grpc_api/guard.py) on a real grpc.aio server: health and
reflection as the service hosts them, and one test service of each call shape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection_pb2

from spoton.v1 import catalog_pb2, inference_pb2, tasks_pb2
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.grpc_api.errors import unary
from spoton_inference.grpc_api.guard import RefusedRequest, RequestGuard, check_message
from spoton_inference.grpc_api.reflection import add_reflection

NOT_PROTOBUF = b"\xff\xff\xff\xff"  # a field tag that never ends: no message parses from it
UNARY_TIMEOUT_S = 0.2
TEST_SERVICE = "spoton.test.Shapes"


class Shapes:
    """One handler per call shape; each echoes what it received as a ListTasksRequest."""

    def __init__(self) -> None:
        self.never = asyncio.Event()

    @unary
    async def echo(self, request: tasks_pb2.ListTasksRequest, context: grpc.aio.ServicerContext):
        return request

    async def hang(self, request: tasks_pb2.ListTasksRequest, context: grpc.aio.ServicerContext):
        await self.never.wait()  # a handler that never answers on its own

    async def echo_twice(self, request, context) -> AsyncIterator[tasks_pb2.ListTasksRequest]:
        yield request
        yield request

    @unary
    async def count(self, requests: AsyncIterator[tasks_pb2.ListTasksRequest], context):
        return tasks_pb2.ListTasksRequest(page_size=len([r async for r in requests]))

    @unary
    async def echo_each(self, requests: AsyncIterator[tasks_pb2.ListTasksRequest], context) -> None:
        async for request in requests:
            await context.write(request)


@pytest_asyncio.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[RequestGuard(UNARY_TIMEOUT_S)])
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    add_reflection(server, ["grpc.health.v1.Health"])
    shapes = Shapes()
    parse, write = tasks_pb2.ListTasksRequest.FromString, tasks_pb2.ListTasksRequest.SerializeToString
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(shapes.echo, parse, write),
        "Hang": grpc.unary_unary_rpc_method_handler(shapes.hang, parse, write),
        "ServerStream": grpc.unary_stream_rpc_method_handler(shapes.echo_twice, parse, write),
        "ClientStream": grpc.stream_unary_rpc_method_handler(shapes.count, parse, write),
        "Bidi": grpc.stream_stream_rpc_method_handler(shapes.echo_each, parse, write),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(TEST_SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(grace=None)


def _method(name: str) -> str:
    return f"/{TEST_SERVICE}/{name}"


async def _status(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details()


# -- bodies that are not protobuf -------------------------------------------------------------


async def test_a_unary_body_that_is_not_protobuf_is_invalid_argument_naming_the_type(channel):
    code, details = await _status(channel.unary_unary(_method("Unary"))(NOT_PROTOBUF))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid spoton.v1.ListTasksRequest" in details
    good = tasks_pb2.ListTasksRequest(page_size=3).SerializeToString()
    assert await channel.unary_unary(_method("Unary"))(good) == good


async def test_a_server_stream_body_that_is_not_protobuf_is_invalid_argument(channel):
    call = channel.unary_stream(_method("ServerStream"))(NOT_PROTOBUF)
    code, _ = await _status(call.read())
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_bad_message_mid_stream_is_invalid_argument_after_the_good_ones_are_answered(channel):
    call = channel.stream_stream(_method("Bidi"))()
    good = tasks_pb2.ListTasksRequest(page_size=1).SerializeToString()
    await call.write(good)
    assert await call.read() == good
    await call.write(NOT_PROTOBUF)
    code, details = await _status(call.read())
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "ListTasksRequest" in details


async def test_a_client_stream_with_a_bad_message_is_invalid_argument(channel):
    good = tasks_pb2.ListTasksRequest().SerializeToString()
    code, _ = await _status(channel.stream_unary(_method("ClientStream"))(iter([good, NOT_PROTOBUF])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_health_and_reflection_refuse_bodies_that_are_not_protobuf(channel):
    code, _ = await _status(channel.unary_unary("/grpc.health.v1.Health/Check")(NOT_PROTOBUF))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await _status(channel.unary_stream("/grpc.health.v1.Health/Watch")(NOT_PROTOBUF).read())
    assert code == grpc.StatusCode.INVALID_ARGUMENT

    reflect = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")()
    await reflect.write(reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString())
    listed = reflection_pb2.ServerReflectionResponse.FromString(await reflect.read())
    assert "grpc.health.v1.Health" in [s.name for s in listed.list_services_response.service]
    await reflect.write(NOT_PROTOBUF)
    code, _ = await _status(reflect.read())
    assert code == grpc.StatusCode.INVALID_ARGUMENT


# -- contract checks on parsed messages -------------------------------------------------------


async def test_nul_in_a_string_and_an_unknown_enum_value_are_invalid_argument_naming_the_field(channel):
    call = channel.unary_unary(_method("Unary"))
    nul = tasks_pb2.ListTasksRequest(environment_id="a\x00b").SerializeToString()
    code, details = await _status(call(nul))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "environment_id contains a NUL" in details
    unknown = tasks_pb2.ListTasksRequest(state=99).SerializeToString()  # type: ignore[arg-type]
    code, details = await _status(call(unknown))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "state is 99, not a spoton.v1.TaskState value" in details and "TASK_STATE_COMPLETED" in details


async def test_health_refuses_a_nul_in_the_service_name(channel):
    request = health_pb2.HealthCheckRequest(service="a\x00b").SerializeToString()
    code, _ = await _status(channel.unary_unary("/grpc.health.v1.Health/Check")(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_nested_repeated_and_map_fields_are_checked_with_their_path():
    request = catalog_pb2.CreateEnvironmentRequest()
    request.environment.cameras.add(camera_id="ok")
    request.environment.cameras.add(camera_id="bad\x00")
    with pytest.raises(RefusedRequest, match=r"environment\.cameras\[1\]\.camera_id contains a NUL"):
        check_message(request)
    assert issubclass(RefusedRequest, InvalidArgument)  # the servicers' own mapping answers INVALID_ARGUMENT


def test_timestamps_outside_years_1_to_9999_are_refused():
    frame = inference_pb2.StreamFramesRequest(timestamp=timestamp_pb2.Timestamp(seconds=2**40))
    with pytest.raises(RefusedRequest, match=r"timestamp .* is not a valid timestamp"):
        check_message(frame)
    check_message(inference_pb2.StreamFramesRequest(timestamp=timestamp_pb2.Timestamp(seconds=1_700_000_000)))


def test_one_refusal_names_a_bounded_number_of_problems():
    request = tasks_pb2.StartTaskRequest(camera_ids=["\x00"] * 1000)
    with pytest.raises(RefusedRequest) as err:
        check_message(request)
    assert str(err.value).count("contains a NUL") == 5 and str(err.value).endswith("; and more")


# -- deadlines --------------------------------------------------------------------------------


async def test_a_unary_call_without_a_deadline_gets_the_server_s(channel):
    code, details = await _status(channel.unary_unary(_method("Hang"))(b""))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "SPOTON_GRPC_UNARY_TIMEOUT_S" in details


async def test_a_client_deadline_longer_than_the_server_s_is_honoured(channel):
    call = channel.unary_unary(_method("Hang"))(b"", timeout=UNARY_TIMEOUT_S * 3)
    code, details = await _status(call)
    # The client's own deadline ran out (grpc's wording), not the server's default.
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "SPOTON_GRPC_UNARY_TIMEOUT_S" not in details


async def test_streams_get_no_server_deadline(channel):
    call = channel.stream_stream(_method("Bidi"))()
    await asyncio.sleep(UNARY_TIMEOUT_S * 2)  # idle past the unary limit: still open
    await call.write(tasks_pb2.ListTasksRequest(page_size=2).SerializeToString())
    assert tasks_pb2.ListTasksRequest.FromString(await call.read()).page_size == 2
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK
