"""Over gRPC on the real stack: per-environment scoping, rate limits per credential, and the
audit log an admin reads."""

from __future__ import annotations

import uuid

import grpc
import pytest
from support.auth import authed_channel, make_key

from spoton.v1 import auth_pb2, auth_pb2_grpc, catalog_pb2, catalog_pb2_grpc, tasks_pb2, tasks_pb2_grpc


async def _register(live_service, environment_id: str) -> None:
    path = live_service.make_environment(environment_id)
    async with authed_channel(live_service.target, live_service.api_key) as channel:
        await catalog_pb2_grpc.CatalogServiceStub(channel).RegisterEnvironmentFromDirectory(
            catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=str(path)), timeout=30
        )


async def test_a_scoped_viewer_sees_only_its_environment(live_service):
    hall, yard = f"hall-{uuid.uuid4().hex[:6]}", f"yard-{uuid.uuid4().hex[:6]}"
    await _register(live_service, hall)
    await _register(live_service, yard)
    async with authed_channel(live_service.target, live_service.api_key) as channel:
        yard_task = (
            await tasks_pb2_grpc.TaskServiceStub(channel).StartTask(
                tasks_pb2.StartTaskRequest(environment_id=yard), timeout=30
            )
        ).task.task_id
    viewer = await make_key(live_service.target, "viewer", [hall])
    async with authed_channel(live_service.target, viewer) as channel:
        catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        listed = await catalog.ListEnvironments(catalog_pb2.ListEnvironmentsRequest(), timeout=10)
        assert [e.environment_id for e in listed.environments] == [hall]
        page = await tasks.ListTasks(tasks_pb2.ListTasksRequest(page_size=200), timeout=10)
        assert {t.environment_id for t in page.tasks} <= {hall}
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=yard_task), timeout=10)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await catalog.GetEnvironment(catalog_pb2.GetEnvironmentRequest(environment_id=yard), timeout=10)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        # As for a missing environment; the ones it names are only those the viewer may see.
        assert refused.value.details() == f"environment {yard!r} not found (known: {hall})"


async def test_task_starts_past_the_rate_limit_answer_resource_exhausted(live_service):
    hall = f"hall-{uuid.uuid4().hex[:6]}"
    await _register(live_service, hall)
    operator = await make_key(live_service.target, "operator")
    limit = live_service.settings.rate_limit_task_starts_per_min
    async with authed_channel(live_service.target, operator) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        # Refused starts count too; an unknown camera keeps each one cheap.
        codes = []
        for _ in range(limit + 1):
            try:
                await tasks.StartTask(tasks_pb2.StartTaskRequest(environment_id=hall, camera_ids=["nope"]), timeout=10)
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code())
                last = exc
    assert codes == [grpc.StatusCode.INVALID_ARGUMENT] * limit + [grpc.StatusCode.RESOURCE_EXHAUSTED]
    trailing = dict(last.trailing_metadata() or ())
    assert trailing["spoton-error-reason"] == "rate-limited"
    assert 1 <= int(trailing["retry-after"]) <= 60


async def test_an_admin_reads_who_started_and_cancelled_a_task(live_service):
    hall = f"hall-{uuid.uuid4().hex[:6]}"
    await _register(live_service, hall)
    name = f"auditor-{uuid.uuid4().hex[:6]}"
    operator = await make_key(live_service.target, "operator", name=name)
    async with authed_channel(live_service.target, operator) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        task_id = (await tasks.StartTask(tasks_pb2.StartTaskRequest(environment_id=hall), timeout=30)).task.task_id
        await tasks.ControlTask(
            tasks_pb2.ControlTaskRequest(task_id=task_id, action=tasks_pb2.TASK_ACTION_CANCEL), timeout=30
        )
    async with authed_channel(live_service.target, live_service.api_key) as channel:
        page = await auth_pb2_grpc.AuthServiceStub(channel).ListAuditEvents(
            auth_pb2.ListAuditEventsRequest(actor=name), timeout=10
        )
    assert [(e.action, e.target, e.outcome, e.role) for e in page.events] == [
        ("task.cancel", f"task/{task_id}", "ok", "operator"),
        ("task.start", f"task/{task_id}", "ok", "operator"),
    ]
    assert all(operator not in str(e) for e in page.events)  # the key itself is never recorded
