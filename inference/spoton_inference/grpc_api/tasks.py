"""``TaskService``: start, follow, control and export processing tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from spoton.v1 import (
    tasks_pb2,
    tasks_pb2_grpc,
)
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.grpc_api import convert
from spoton_inference.grpc_api.errors import streaming, unary
from spoton_inference.services.tasks import TaskManager

EXPORT_CHUNK_BYTES = 256 * 1024


class TaskServicer(tasks_pb2_grpc.TaskServiceServicer):
    def __init__(self, tasks: TaskManager) -> None:
        self.tasks = tasks

    @unary
    async def StartTask(self, request, context):
        record = await self.tasks.start(
            request.environment_id,
            list(request.camera_ids),
            idempotency_key=request.idempotency_key,
            allow_concurrent=request.allow_concurrent,
        )
        seq = await self.tasks.last_sequence(record.task_id)
        return tasks_pb2.StartTaskResponse(task=convert.task(record, seq))

    @unary
    async def GetTask(self, request, context):
        return await self._task(await self.tasks.get(request.task_id))

    @unary
    async def ControlTask(self, request, context):
        action = convert.PROTO_TO_ACTION.get(request.action)
        if action is None:
            raise InvalidArgument("action is required: TASK_ACTION_PAUSE, _RESUME, _CANCEL or _FOCUS")
        record = await self.tasks.control(request.task_id, action, request.focus_global_id)
        return tasks_pb2.ControlTaskResponse(task=await self._task(record))

    async def _task(self, record: TaskRecord) -> tasks_pb2.Task:
        seq, focus = await asyncio.gather(self.tasks.last_sequence(record.task_id), self.tasks.focus(record.task_id))
        return convert.task(record, seq, focus)

    @unary
    async def ListTasks(self, request, context):
        if request.page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        state = convert.PROTO_TO_STATE.get(request.state) if request.state else None
        rows, token = await self.tasks.list(
            page_size=request.page_size,
            page_token=request.page_token,
            environment_id=request.environment_id,
            state=state,
        )
        # Rows carry what GetTask does (last sequence, focus), so a list is enough to resume watching.
        tasks = await asyncio.gather(*(self._task(r) for r in rows))
        return tasks_pb2.ListTasksResponse(tasks=tasks, next_page_token=token)

    @streaming
    async def WatchTask(self, request, context) -> AsyncIterator[tasks_pb2.TaskEvent]:
        # NOT_FOUND, INVALID_ARGUMENT and OUT_OF_RANGE before the stream opens; nothing to send
        # (a finished task, resumed after its last event) ends it at once with OK.
        if not await self.tasks.check_resume(request.task_id, request.after_sequence):
            return
        # Headers now, so proxies (the facade) open their stream without waiting for an event.
        await context.send_initial_metadata(())
        async for event in self.tasks.watch(request.task_id, request.after_sequence):
            yield convert.task_event(event)

    @unary
    async def ListTaskExports(self, request, context):
        files = await self.tasks.exports(request.task_id)
        return tasks_pb2.ListTaskExportsResponse(
            files=[
                tasks_pb2.ExportFile(name=f.name, size_bytes=f.size_bytes, media_type=f.media_type, url=f.url)
                for f in files
            ]
        )

    @streaming
    async def GetTaskExport(self, request, context) -> AsyncIterator[tasks_pb2.ExportChunk]:
        path = await self.tasks.export_path(request.task_id, request.name)
        with path.open("rb") as f:
            while chunk := f.read(EXPORT_CHUNK_BYTES):
                yield tasks_pb2.ExportChunk(data=chunk)
