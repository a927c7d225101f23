"""StartTask keeps one unfinished task per environment unless asked for another, naming the
task in the way; ListEnvironments tells sites from the environments jobs made."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from spoton.v1 import catalog_pb2, tasks_pb2
from spoton_inference.domain.environment import EnvironmentOrigin

CANCEL = tasks_pb2.TASK_ACTION_CANCEL
PAUSE = tasks_pb2.TASK_ACTION_PAUSE


async def _start(tasks, environment_id: str, **fields: object) -> tasks_pb2.Task:
    return (await tasks.StartTask(tasks_pb2.StartTaskRequest(environment_id=environment_id, **fields))).task


async def _cancel(tasks, *task_ids: str) -> None:
    for task_id in task_ids:
        await tasks.ControlTask(tasks_pb2.ControlTaskRequest(task_id=task_id, action=CANCEL))


async def test_a_second_start_is_refused_naming_the_unfinished_task(tasks, register) -> None:
    env = (await register("one-running")).environment_id
    first = await _start(tasks, env)
    await tasks.ControlTask(tasks_pb2.ControlTaskRequest(task_id=first.task_id, action=PAUSE))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _start(tasks, env)
    error = refused.value
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert first.task_id in error.details() and "allow_concurrent" in error.details()
    trailing = dict(error.trailing_metadata() or ())
    assert trailing["spoton-error-reason"] == "task-running" and trailing["spoton-task-id"] == first.task_id

    beside = await _start(tasks, env, allow_concurrent=True)
    assert beside.task_id != first.task_id
    await _cancel(tasks, first.task_id, beside.task_id)
    after = await _start(tasks, env)  # every task over it has ended
    await _cancel(tasks, after.task_id)


async def test_of_racing_starts_one_wins_and_the_others_name_it(tasks, register) -> None:
    env = (await register("racing-starts")).environment_id
    answers = await asyncio.gather(*(_start(tasks, env) for _ in range(6)), return_exceptions=True)
    won = [a for a in answers if isinstance(a, tasks_pb2.Task)]
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(won) == 1 and len(refused) == 5, answers
    assert {dict(e.trailing_metadata())["spoton-task-id"] for e in refused} == {won[0].task_id}
    listed = await tasks.ListTasks(tasks_pb2.ListTasksRequest(environment_id=env))
    assert [t.task_id for t in listed.tasks] == [won[0].task_id]
    await _cancel(tasks, won[0].task_id)


async def test_list_environments_filters_on_origin(catalog, register, live_service) -> None:
    site = (await register("origin-site")).environment_id
    path = live_service.make_environment("origin-job")
    job = (await live_service.app.catalog.register_directory(str(path), origin=EnvironmentOrigin.JOB)).environment_id

    async def listed(origin: int) -> dict[str, int]:
        reply = await catalog.ListEnvironments(catalog_pb2.ListEnvironmentsRequest(origin=origin))
        return {e.environment_id: e.origin for e in reply.environments}

    every = await listed(catalog_pb2.ENVIRONMENT_ORIGIN_UNSPECIFIED)
    assert every[site] == catalog_pb2.ENVIRONMENT_ORIGIN_SITE and every[job] == catalog_pb2.ENVIRONMENT_ORIGIN_JOB
    sites = await listed(catalog_pb2.ENVIRONMENT_ORIGIN_SITE)
    assert site in sites and job not in sites
    jobs = await listed(catalog_pb2.ENVIRONMENT_ORIGIN_JOB)
    assert job in jobs and site not in jobs
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await listed(7)
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The origin outlives a reload from PostgreSQL (another replica's view).
    await live_service.app.catalog.reload()
    assert (await listed(catalog_pb2.ENVIRONMENT_ORIGIN_JOB))[job] == catalog_pb2.ENVIRONMENT_ORIGIN_JOB
