"""gRPC servicers for spoton.v1: thin translations over :class:`InferenceApp`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from spoton.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    inference_pb2,
    inference_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)
from spoton_inference.app import InferenceApp
from spoton_inference.core.detection import decode_raw, detect_encoded, detect_image
from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.grpc_api import convert
from spoton_inference.grpc_api.errors import streaming, unary
from spoton_inference.storage.postgres import TaskRecord

EXPORT_CHUNK_BYTES = 256 * 1024


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, app: InferenceApp) -> None:
        self.app = app

    @unary
    async def RegisterEnvironmentFromDirectory(self, request, context):
        env = await self.app.catalog.register_directory(request.path)
        return catalog_pb2.RegisterEnvironmentFromDirectoryResponse(environment=convert.environment(env))

    @unary
    async def ListEnvironments(self, request, context):
        origin = convert.PROTO_TO_ORIGIN.get(request.origin)  # None (UNSPECIFIED): every origin
        if origin is None and request.origin:
            raise InvalidArgument(f"origin {request.origin} is unknown: ENVIRONMENT_ORIGIN_SITE, _JOB or unset for all")
        return catalog_pb2.ListEnvironmentsResponse(
            environments=[convert.environment(e) for e in self.app.catalog.list(origin)]
        )

    @unary
    async def GetEnvironment(self, request, context):
        return convert.environment(self.app.catalog.get(request.environment_id))

    @unary
    async def CreateEnvironment(self, request, context):
        env = await self.app.catalog.create_environment(convert.environment_spec(request.environment))
        return convert.environment(env)

    @unary
    async def UpdateEnvironment(self, request, context):
        patch = convert.environment_patch(request)
        return convert.environment(await self.app.catalog.update_environment(request.environment_id, patch))

    @unary
    async def DeleteEnvironment(self, request, context):
        await self.app.catalog.delete_environment(request.environment_id)
        return catalog_pb2.DeleteEnvironmentResponse()

    @unary
    async def ListCameras(self, request, context):
        env = self.app.catalog.get(request.environment_id)
        if request.group_id:
            self.app.catalog.group(request.environment_id, request.group_id)  # NOT_FOUND for an unknown group
        cameras = [
            c
            for c in env.cameras
            if (not request.group_id or c.group_id == request.group_id)
            and (not request.HasField("enabled") or c.enabled == request.enabled)
        ]
        return catalog_pb2.ListCamerasResponse(cameras=[convert.camera(c) for c in cameras])

    @unary
    async def GetCamera(self, request, context):
        return convert.camera(self.app.catalog.camera(request.environment_id, request.camera_id))

    @unary
    async def CreateCamera(self, request, context):
        spec = convert.camera_spec(request.camera)
        return convert.camera(await self.app.catalog.create_camera(request.environment_id, spec))

    @unary
    async def UpdateCamera(self, request, context):
        patch = convert.camera_patch(request)
        return convert.camera(await self.app.catalog.update_camera(request.environment_id, request.camera_id, patch))

    @unary
    async def DeleteCamera(self, request, context):
        await self.app.catalog.delete_camera(request.environment_id, request.camera_id)
        return catalog_pb2.DeleteCameraResponse()

    @unary
    async def TestCameraConnection(self, request, context):
        ops = self.app.camera_ops
        if request.source_url:
            source = CameraSource.from_url(request.source_url, request.username, request.password)
        elif request.environment_id and request.camera_id:
            source = ops.live_source(request.environment_id, request.camera_id)
        else:
            raise InvalidArgument("give environment_id and camera_id of a registered camera, or a source_url to try")
        return convert.connection_test(await ops.test_source(source), source.masked_url)

    @unary
    async def GetCameraSnapshot(self, request, context):
        snap = await self.app.camera_ops.snapshot(
            request.environment_id, request.camera_id, draw_detections=request.draw_detections
        )
        return catalog_pb2.CameraSnapshot(
            jpeg=snap.jpeg,
            width=snap.width,
            height=snap.height,
            captured_at=convert.timestamp(snap.captured_at),
            detections=snap.detections,
        )

    @unary
    async def ListCameraHealth(self, request, context):
        if request.limit < 0:
            raise InvalidArgument("limit must not be negative")
        report = await self.app.camera_health.report(request.environment_id, request.camera_id, request.limit)
        return convert.camera_health(report)


class TaskServicer(tasks_pb2_grpc.TaskServiceServicer):
    def __init__(self, app: InferenceApp) -> None:
        self.app = app

    @unary
    async def StartTask(self, request, context):
        record = await self.app.tasks.start(
            request.environment_id,
            list(request.camera_ids),
            idempotency_key=request.idempotency_key,
            allow_concurrent=request.allow_concurrent,
        )
        seq = await self.app.tasks.last_sequence(record.task_id)
        return tasks_pb2.StartTaskResponse(task=convert.task(record, seq))

    @unary
    async def GetTask(self, request, context):
        return await self._task(await self.app.tasks.get(request.task_id))

    @unary
    async def ControlTask(self, request, context):
        action = convert.PROTO_TO_ACTION.get(request.action)
        if action is None:
            raise InvalidArgument("action is required: TASK_ACTION_PAUSE, _RESUME, _CANCEL or _FOCUS")
        record = await self.app.tasks.control(request.task_id, action, request.focus_global_id)
        return tasks_pb2.ControlTaskResponse(task=await self._task(record))

    async def _task(self, record: TaskRecord) -> tasks_pb2.Task:
        seq, focus = await asyncio.gather(
            self.app.tasks.last_sequence(record.task_id), self.app.tasks.focus(record.task_id)
        )
        return convert.task(record, seq, focus)

    @unary
    async def ListTasks(self, request, context):
        if request.page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        state = convert.PROTO_TO_STATE.get(request.state) if request.state else None
        rows, token = await self.app.tasks.list(
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
        if not await self.app.tasks.check_resume(request.task_id, request.after_sequence):
            return
        # Headers now, so proxies (the facade) open their stream without waiting for an event.
        await context.send_initial_metadata(())
        async for event in self.app.tasks.watch(request.task_id, request.after_sequence):
            yield convert.task_event(event)

    @unary
    async def ListTaskExports(self, request, context):
        files = await self.app.tasks.exports(request.task_id)
        return tasks_pb2.ListTaskExportsResponse(
            files=[
                tasks_pb2.ExportFile(name=f.name, size_bytes=f.size_bytes, media_type=f.media_type, url=f.url)
                for f in files
            ]
        )

    @streaming
    async def GetTaskExport(self, request, context) -> AsyncIterator[tasks_pb2.ExportChunk]:
        path = await self.app.tasks.export_path(request.task_id, request.name)
        with path.open("rb") as f:
            while chunk := f.read(EXPORT_CHUNK_BYTES):
                yield tasks_pb2.ExportChunk(data=chunk)


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, app: InferenceApp) -> None:
        self.app = app

    @unary
    async def Detect(self, request, context):
        which, limit = request.WhichOneof("image"), self.app.settings.max_image_pixels
        threshold = request.score_threshold or self.app.settings.detection_threshold
        if which == "encoded":
            result = await detect_encoded(
                self.app.models, request.encoded, limit, threshold, request.include_embeddings
            )
        elif which == "raw":
            rgb = decode_raw(request.raw.data, request.raw.width, request.raw.height, limit)
            result = await detect_image(self.app.models, rgb, threshold, request.include_embeddings)
        else:
            raise InvalidArgument("set either `encoded` (JPEG/PNG bytes) or `raw` (BGR pixels with width and height)")
        response = inference_pb2.DetectResponse(width=result.width, height=result.height)
        for i, (box, score) in enumerate(zip(result.boxes, result.scores, strict=True)):
            det = response.detections.add(box=common_pb2.Box(x1=box[0], y1=box[1], x2=box[2], y2=box[3]), score=score)
            if result.embeddings is not None:
                det.embedding.extend(result.embeddings[i].tolist())
        return response


class SystemServicer(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, app: InferenceApp) -> None:
        self.app = app

    async def GetHealth(self, request: system_pb2.GetHealthRequest, context: grpc.aio.ServicerContext):
        # From the background prober's newest round: a poll costs no probe (core/health.py).
        return convert.health(await self.app.latest_health())
