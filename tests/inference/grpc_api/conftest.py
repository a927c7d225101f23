"""gRPC stubs on the in-process inference service (``live_service`` in tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
import pytest_asyncio
from support.auth import authed_channel

from spoton.v1 import catalog_pb2, catalog_pb2_grpc, tasks_pb2, tasks_pb2_grpc


@pytest_asyncio.fixture(scope="package")
async def channel(live_service) -> AsyncIterator[grpc.aio.Channel]:
    async with authed_channel(live_service.target) as channel:
        yield channel


@pytest_asyncio.fixture(scope="package")
async def catalog(channel) -> catalog_pb2_grpc.CatalogServiceStub:
    return catalog_pb2_grpc.CatalogServiceStub(channel)


@pytest_asyncio.fixture(scope="package")
async def tasks(channel) -> tasks_pb2_grpc.TaskServiceStub:
    return tasks_pb2_grpc.TaskServiceStub(channel)


@pytest_asyncio.fixture(scope="package")
async def register(live_service, catalog) -> Callable[[str], object]:
    """Register a tiny two-camera environment directory under ``environment_id``."""

    async def register(environment_id: str) -> catalog_pb2.Environment:
        path = live_service.make_environment(environment_id)
        request = catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=str(path))
        return (await catalog.RegisterEnvironmentFromDirectory(request)).environment

    return register


@pytest_asyncio.fixture(scope="package")
async def wait_for_task(tasks) -> Callable[..., object]:
    """``await wait_for_task(task_id, done)``: poll GetTask until ``done(task)``."""

    async def wait(task_id: str, done: Callable[[tasks_pb2.Task], bool], timeout_s: float = 60) -> tasks_pb2.Task:
        async with asyncio.timeout(timeout_s):
            while True:
                task = await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))
                if done(task):
                    return task
                await asyncio.sleep(0.05)

    return wait


@pytest.fixture(scope="session")
def rpc_error() -> Callable[[Awaitable[object]], Awaitable[tuple[grpc.StatusCode, str]]]:
    """``code, details = await rpc_error(call)``: the status a call that must fail ends with."""

    async def error(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        return err.value.code(), err.value.details()

    return error
