"""ControlTask on real tasks: pause really stops frames, cancel is prompt and leaks nothing,
focus is recorded and announced, and invalid transitions are FAILED_PRECONDITION."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import pytest_asyncio

from spoton.v1 import tasks_pb2
from spoton_inference.domain.events import BatchProcessingComplete
from spoton_inference.storage.redis_events import RedisEventLog

PAUSE, RESUME, CANCEL, FOCUS = (
    tasks_pb2.TASK_ACTION_PAUSE,
    tasks_pb2.TASK_ACTION_RESUME,
    tasks_pb2.TASK_ACTION_CANCEL,
    tasks_pb2.TASK_ACTION_FOCUS,
)
FINAL = (tasks_pb2.TASK_STATE_COMPLETED, tasks_pb2.TASK_STATE_FAILED, tasks_pb2.TASK_STATE_CANCELLED)


@pytest_asyncio.fixture(scope="module")
async def environment_id(register) -> str:
    return (await register("control-site")).environment_id


@pytest_asyncio.fixture
async def start(tasks, environment_id):
    """Start a task; any still unfinished at the end of the test is cancelled."""
    started: list[str] = []

    async def start() -> str:
        # Beside any task an earlier test left ending: these tests are about controls, not starts.
        request = tasks_pb2.StartTaskRequest(environment_id=environment_id, allow_concurrent=True)
        task = (await tasks.StartTask(request)).task
        started.append(task.task_id)
        return task.task_id

    yield start
    for task_id in started:
        if (await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))).state not in FINAL:
            await tasks.ControlTask(tasks_pb2.ControlTaskRequest(task_id=task_id, action=CANCEL))


async def _control(tasks, task_id: str, action: int, focus: int = 0) -> tasks_pb2.Task:
    request = tasks_pb2.ControlTaskRequest(task_id=task_id, action=action, focus_global_id=focus)
    return (await tasks.ControlTask(request)).task


async def _refused(tasks, task_id: str, action: int, focus: int = 0) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _control(tasks, task_id, action, focus)
    return err.value.code(), err.value.details()


async def _events(tasks, task_id: str, after: int = 0) -> list[tasks_pb2.TaskEvent]:
    call = tasks.WatchTask(tasks_pb2.WatchTaskRequest(task_id=task_id, after_sequence=after), timeout=60)
    return [event async for event in call]


def _runner_tasks(task_id: str) -> list[asyncio.Task]:
    """asyncio tasks still running for ``task_id``: the task itself and its read-ahead stage."""
    names = ("TaskManager._run", "TaskRunner.")
    return [
        t
        for t in asyncio.all_tasks()
        if t.get_name() == f"task-{task_id}" or any(n in t.get_coro().__qualname__ for n in names)
    ]


async def test_pause_holds_frames_until_resume(tasks, start, wait_for_task):
    task_id = await start()
    paused = await _control(tasks, task_id, PAUSE)
    assert paused.state == tasks_pb2.TASK_STATE_PAUSED
    # At most the frame in flight when the pause came is finished, then nothing moves.
    await asyncio.sleep(0.5)
    held = await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))
    await asyncio.sleep(1.0)
    still = await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))
    assert still.state == tasks_pb2.TASK_STATE_PAUSED
    assert still.frames_processed == held.frames_processed < still.total_frames
    assert still.last_sequence == held.last_sequence  # no tracking updates either

    code, details = await _refused(tasks, task_id, PAUSE)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "already paused" in details
    resumed = await _control(tasks, task_id, RESUME)
    assert resumed.state in (
        tasks_pb2.TASK_STATE_QUEUED,
        tasks_pb2.TASK_STATE_PREPARING,
        tasks_pb2.TASK_STATE_PROCESSING,
    )
    code, details = await _refused(tasks, task_id, RESUME)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not paused" in details

    done = await wait_for_task(task_id, lambda t: t.state in FINAL)
    assert done.state == tasks_pb2.TASK_STATE_COMPLETED and done.frames_processed == done.total_frames
    states = [e.status_update.state for e in await _events(tasks, task_id) if e.HasField("status_update")]
    assert tasks_pb2.TASK_STATE_PAUSED in states
    after_pause = states[states.index(tasks_pb2.TASK_STATE_PAUSED) + 1 :]
    assert after_pause and tasks_pb2.TASK_STATE_PAUSED not in after_pause and after_pause[-1] == done.state

    # A finished task takes no more controls.
    for action in (PAUSE, RESUME, CANCEL, FOCUS):
        code, details = await _refused(tasks, task_id, action, focus=1)
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "completed" in details


@pytest.mark.parametrize("paused_first", [False, True])
async def test_cancel_is_prompt_final_and_leaks_no_task(tasks, start, paused_first):
    task_id = await start()
    await asyncio.sleep(0.3)  # let it get going
    if paused_first:
        await _control(tasks, task_id, PAUSE)
    assert _runner_tasks(task_id)
    loop = asyncio.get_running_loop()
    began = loop.time()
    cancelled = await _control(tasks, task_id, CANCEL)
    assert loop.time() - began < 2.0
    assert cancelled.state == tasks_pb2.TASK_STATE_CANCELLED and cancelled.step == "cancelled"
    assert cancelled.frames_processed < cancelled.total_frames
    await asyncio.sleep(0)  # let the done callbacks run
    assert _runner_tasks(task_id) == []

    events = await _events(tasks, task_id)  # the stream ends: the last event is the final status
    assert events[-1].status_update.state == tasks_pb2.TASK_STATE_CANCELLED
    code, _ = await _refused(tasks, task_id, RESUME)
    assert code == grpc.StatusCode.FAILED_PRECONDITION


async def test_focus_is_recorded_and_announced(tasks, start):
    task_id = await start()
    await _control(tasks, task_id, PAUSE)  # keep it unfinished while we look
    focused = await _control(tasks, task_id, FOCUS, focus=7)
    assert focused.focus_global_id == 7 and focused.state == tasks_pb2.TASK_STATE_PAUSED
    got = await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))
    assert got.focus_global_id == 7
    # A list row says the same as GetTask, so a dashboard can resume from the list alone.
    listed = await tasks.ListTasks(tasks_pb2.ListTasksRequest(state=tasks_pb2.TASK_STATE_PAUSED))
    row = next(t for t in listed.tasks if t.task_id == task_id)
    assert (row.focus_global_id, row.last_sequence) == (7, got.last_sequence) and row.last_sequence > 0
    cleared = await _control(tasks, task_id, FOCUS, focus=0)
    assert cleared.focus_global_id == 0
    code, details = await _refused(tasks, task_id, FOCUS, focus=-3)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "focus_global_id" in details

    await _control(tasks, task_id, CANCEL)
    focus_events = [e.focus_update.global_id for e in await _events(tasks, task_id) if e.HasField("focus_update")]
    assert focus_events == [7, 0]


@pytest.mark.parametrize(
    ("task_id", "action", "code"),
    [
        ("not-a-uuid", PAUSE, grpc.StatusCode.INVALID_ARGUMENT),
        ("00000000-0000-4000-8000-000000000000", PAUSE, grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_bad_requests(tasks, task_id, action, code):
    assert (await _refused(tasks, task_id, action))[0] == code


async def test_an_action_is_required(tasks, start):
    task_id = await start()
    code, details = await _refused(tasks, task_id, tasks_pb2.TASK_ACTION_UNSPECIFIED)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "action" in details


async def test_resuming_past_the_retention_window_is_out_of_range(tasks, start, wait_for_task, live_service):
    task_id = await start()
    await wait_for_task(task_id, lambda t: t.state in FINAL)
    total = len(await _events(tasks, task_id))
    # Another writer with a window of 3 events trims this task's log to its last 3, as retention would.
    log = RedisEventLog.from_url(live_service.settings.redis_url, retention=3)
    try:
        await log.append(task_id, BatchProcessingComplete(sub_video_batch_index=9))
    finally:
        await log.close()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _events(tasks, task_id, after=1)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "retention window" in err.value.details() and f"resume from {total - 2} or later" in err.value.details()
    # From the window's edge, resuming still works and skips nothing (up to the final status).
    assert [e.sequence for e in await _events(tasks, task_id, after=total - 2)] == [total - 1, total]


async def test_resume_points_at_and_past_the_end(tasks, start, wait_for_task):
    task_id = await start()
    done = await wait_for_task(task_id, lambda t: t.state in FINAL)
    assert await _events(tasks, task_id, after=done.last_sequence) == []  # ends at once, with OK
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _events(tasks, task_id, after=done.last_sequence + 1)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE and "past the newest event" in err.value.details()
