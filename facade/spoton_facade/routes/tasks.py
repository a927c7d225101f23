"""``/api/v1/processing-tasks``: start, inspect, list and follow tasks (TaskService)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from spoton.v1 import tasks_pb2
from spoton_facade import to_proto
from spoton_facade.clients.inference import InferenceClient
from spoton_facade.contract import SEQUENCE_MAX, UUID, optional_integer
from spoton_facade.convert import enum_number
from spoton_facade.idempotency import IdempotencyKeyHeader, idempotency_key
from spoton_facade.problems import LOOKUP_PROBLEMS, UPSTREAM_PROBLEMS, problem_responses
from spoton_facade.schemas.base import from_proto
from spoton_facade.schemas.tasks import ControlTaskBody, ExportList, StartTaskBody, Task, TaskPage, TaskStarted
from spoton_facade.sse import SSE_HEADERS, EventStreams, LastEventIdHeader

# The service's largest page.
MAX_PAGE_SIZE = 200
# Task ids are UUIDs the service mints.
TaskId = Annotated[str, PathParameter(pattern=UUID)]
# Every state but "unspecified", which as a filter would mean none and list every task.
TaskStateFilter = Literal["queued", "preparing", "processing", "paused", "completed", "failed", "cancelled"]


class TaskController(Controller):
    """Processing tasks over an environment's sub-videos."""

    path = "/processing-tasks"
    tags = ("tasks",)

    @post(
        "/start",
        summary="Start a task",
        description=(
            "With an `Idempotency-Key` header, a retry (after a timeout, say) answers the task the first "
            "request started rather than starting another; the same key with a different body is 422. "
            "While a task over the environment is unfinished, a start is 409 with the problem's `task_id` "
            "naming that task, unless the body sets `allow_concurrent: true`."
        ),
        status_code=202,
        responses={**problem_responses(404, 409, 422), **UPSTREAM_PROBLEMS},
    )
    async def start_task(
        self,
        data: JSONBody[StartTaskBody],
        inference: NamedDependency[InferenceClient],
        request: Request[Any, Any, Any],
        key_header: IdempotencyKeyHeader = None,
    ) -> Response[TaskStarted]:
        """TaskService.StartTask; answers where to poll and where to follow the task."""
        task = await inference.start_task(
            data.environment_id,
            data.camera_ids,
            idempotency_key(key_header),
            allow_concurrent=data.allow_concurrent,
        )
        status_url = request.app.route_reverse("task-status", task_id=task.task_id)
        started = TaskStarted(
            task_id=task.task_id,
            status_url=status_url,
            events_url=request.app.route_reverse("task-events", task_id=task.task_id),
        )
        return Response(started, status_code=202, headers={"Location": status_url})

    @get("/{task_id:str}/status", name="task-status", summary="Get a task", responses=LOOKUP_PROBLEMS)
    async def get_task(self, task_id: TaskId, inference: NamedDependency[InferenceClient]) -> Task:
        """TaskService.GetTask."""
        return from_proto(await inference.get_task(task_id), Task)

    @post(
        "/{task_id:str}/control",
        summary="Pause, resume, cancel or focus a task",
        description=(
            "`pause` holds the task between frames, `resume` lets it go on, `cancel` stops it for good "
            "(answered once it has stopped, state `cancelled`), `focus` records `global_id` (0 clears) "
            "and announces it as a `focus_update` event. 409 when the task's state does not allow "
            "the action (e.g. resume a running task, control a finished one)."
        ),
        status_code=200,
        responses={**problem_responses(404, 409), **UPSTREAM_PROBLEMS},
    )
    async def control_task(
        self, task_id: TaskId, data: JSONBody[ControlTaskBody], inference: NamedDependency[InferenceClient]
    ) -> Task:
        """TaskService.ControlTask; answers the task as it is after the action."""
        return from_proto(await inference.control_task(to_proto.control(task_id, data)), Task)

    @get(
        summary="List tasks",
        responses={**problem_responses(410), **UPSTREAM_PROBLEMS},
    )
    async def list_tasks(
        self,
        inference: NamedDependency[InferenceClient],
        page_size: Annotated[
            int, QueryParameter(ge=0, le=MAX_PAGE_SIZE, description="0: the service's default (50)")
        ] = 0,
        page_token: Annotated[str, QueryParameter(description="`next_page_token` of the page before")] = "",
        environment_id: Annotated[str, QueryParameter(description="Only this environment's tasks")] = "",
        # "state" is a name Litestar reserves for app state, hence the alias.
        state_filter: Annotated[
            TaskStateFilter | None, QueryParameter(name="state", description="Only tasks in this state")
        ] = None,
    ) -> TaskPage:
        """TaskService.ListTasks."""
        number = enum_number(tasks_pb2.TaskState.DESCRIPTOR, state_filter) if state_filter else 0
        page = await inference.list_tasks(page_size, page_token, environment_id, number)
        return from_proto(page, TaskPage)

    @get(
        "/{task_id:str}/events",
        name="task-events",
        summary="Follow a task's events (SSE)",
        description=(
            "`text/event-stream` over TaskService.WatchTask. Each event has `id: <sequence>`, "
            "`event: status_update | media_available | tracking_update | tracks_refined | "
            "batch_processing_complete | focus_update | zone_event` and `data:` the payload as JSON with `sequence`, "
            "`task_id` and `emitted_at` added. `tracks_refined` (recorded video) carries the refined updates "
            "of frames `[start_global_frame_index, end_global_frame_index)`, which replace that range's "
            "`tracking_update` events. `: heartbeat` comments are sent while idle. A "
            "service error after the stream started arrives as `event: problem` (RFC 9457 JSON) "
            "and ends the stream. The stream ends when the task ends. All browsers following a task share one "
            "WatchTask call and its recent events; one that falls behind them is cut off (its stream ends) "
            "and resumes with `Last-Event-ID`."
        ),
        media_type="text/event-stream",
        responses={
            204: ResponseSpec(None, description="The task is over and nothing follows the resume point"),
            **problem_responses(404, 410),
            **UPSTREAM_PROBLEMS,
        },
    )
    async def task_events(
        self,
        task_id: TaskId,
        inference: NamedDependency[InferenceClient],
        event_streams: NamedDependency[EventStreams],
        request: Request[Any, Any, Any],
        resume_header: LastEventIdHeader = None,
        last_event_id: Annotated[
            int | None,
            QueryParameter(
                ge=0,
                le=SEQUENCE_MAX,
                schema_extra=optional_integer(0, SEQUENCE_MAX),
                description="Resume after this sequence, for a first connect",
            ),
        ] = None,
    ) -> Stream:
        """TaskService.WatchTask as Server-Sent Events, one call shared by the task's browsers
        (``sse_hub``); this browser's credential is checked by its own GetTask or WatchTask."""
        # The header wins: a browser sends it on reconnecting, after the query's starting point.
        after = resume_header if resume_header is not None else (last_event_id or 0)
        stream = await event_streams.tasks.subscribe(inference, task_id, after, instance=request.url.path)
        if stream is None:
            # A non-200 answer stops EventSource from reconnecting to a finished task forever.
            return Stream((), status_code=204)
        return Stream(
            stream,
            media_type="text/event-stream",
            headers=SSE_HEADERS,
            background=BackgroundTask(stream.aclose),
        )

    @get("/{task_id:str}/exports", summary="List a task's export files", responses=LOOKUP_PROBLEMS)
    async def list_exports(self, task_id: TaskId, inference: NamedDependency[InferenceClient]) -> ExportList:
        """TaskService.ListTaskExports; each file's ``url`` is served by the media route."""
        return from_proto(await inference.list_task_exports(task_id), ExportList)
