"""``spoton.v1.JobService``: the gRPC edge over :class:`~spoton_inference.services.jobs.JobManager`,
and the conversions between its protobuf messages and the core's records."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import grpc

from spoton.v1 import jobs_pb2, jobs_pb2_grpc
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.job_types import JobRecord, JobState, JobZone, ResultKind
from spoton_inference.domain.zones import Zone
from spoton_inference.grpc_api import convert
from spoton_inference.grpc_api.analytics import zone_message
from spoton_inference.grpc_api.errors import streaming, unary
from spoton_inference.services.jobs import JobManager, UploadRequest

RESULT_CHUNK_BYTES = 256 * 1024
STATE_TO_PROTO = {s: jobs_pb2.JobState.Value(f"JOB_STATE_{s.name}") for s in JobState}
PROTO_TO_STATE = {v: k for k, v in STATE_TO_PROTO.items()}
KIND_TO_PROTO = {k: jobs_pb2.JobResultKind.Value(f"JOB_RESULT_KIND_{k.name}") for k in ResultKind}
PROTO_TO_KIND = {v: k for k, v in KIND_TO_PROTO.items()}


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    def __init__(self, jobs: JobManager) -> None:
        self.jobs = jobs

    @unary  # maps core errors to status codes for any coroutine handler, this one included
    async def UploadJob(
        self, request_iterator: AsyncIterator[jobs_pb2.UploadJobRequest], context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Job:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "metadata":
            raise InvalidArgument(
                "the first message must carry `metadata` (filename, ...); the file follows as `chunk`s"
            )
        record = await self.jobs.upload(upload_request(first.metadata), _chunks(requests))
        return self.job(record)

    @unary
    async def GetJob(self, request, context):
        return self.job(await self.jobs.get(request.job_id))

    @unary
    async def ListJobs(self, request, context):
        state = PROTO_TO_STATE.get(request.state) if request.state else None
        rows, token = await self.jobs.list(page_size=request.page_size, page_token=request.page_token, state=state)
        return jobs_pb2.ListJobsResponse(jobs=[self.job(r) for r in rows], next_page_token=token)

    @unary
    async def CancelJob(self, request, context):
        return self.job(await self.jobs.cancel(request.job_id))

    @unary
    async def DeleteJob(self, request, context):
        await self.jobs.delete(request.job_id)
        return jobs_pb2.DeleteJobResponse()

    @streaming
    async def WatchJob(self, request, context) -> AsyncIterator[jobs_pb2.Job]:
        # NOT_FOUND and INVALID_ARGUMENT before the stream opens; a finished job with nothing
        # past after_revision ends it at once with OK.
        if not await self.jobs.has_news(request.job_id, request.after_revision):
            return
        # Headers now, so proxies (the facade) open their stream without waiting for a change.
        await context.send_initial_metadata(())
        async for record in self.jobs.watch(request.job_id, request.after_revision):
            yield self.job(record)

    @streaming
    async def GetJobResult(self, request, context) -> AsyncIterator[jobs_pb2.JobResultChunk]:
        kind = PROTO_TO_KIND.get(request.kind)
        if kind is None:
            raise InvalidArgument("kind is required: JOB_RESULT_KIND_VIDEO, _EVENTS or _TRACKS")
        path = await self.jobs.result_path(request.job_id, kind)
        with path.open("rb") as f:
            while chunk := f.read(RESULT_CHUNK_BYTES):
                yield jobs_pb2.JobResultChunk(data=chunk)

    def job(self, r: JobRecord) -> jobs_pb2.Job:
        out = jobs_pb2.Job(
            job_id=r.job_id,
            name=r.name,
            filename=r.filename,
            state=STATE_TO_PROTO[r.state],
            progress=r.progress,
            step=r.step,
            error=r.error,
            eta_seconds=r.eta_seconds,
            frames_per_second=r.frames_per_second,
            frames_processed=r.frames_processed,
            rendering_frames_per_second=r.rendering_frames_per_second,
            frames_rendered=r.frames_rendered,
            processing_seconds=r.processing_seconds,
            rendering_seconds=r.rendering_seconds,
            elapsed_seconds=round(r.elapsed_seconds(dt.datetime.now(dt.UTC)), 3),
            total_frames=r.total_frames,
            size_bytes=r.size_bytes,
            video=jobs_pb2.VideoInfo(
                container=r.video.container,
                codec=r.video.codec,
                width=r.video.width,
                height=r.video.height,
                fps=r.video.fps,
                duration_s=r.video.duration_s,
                frames=r.video.frames,
            ),
            environment_id=r.environment_id,
            camera_id=r.camera_id,
            task_id=r.task_id,
            fps_override=r.options.fps,
            detection_threshold=r.options.detection_threshold,
            has_homography=r.options.homography is not None,
            results=[
                jobs_pb2.JobResult(
                    kind=KIND_TO_PROTO[x.kind],
                    name=x.name,
                    media_type=x.media_type,
                    size_bytes=x.size_bytes,
                    url=self.jobs.result_url(x),
                    media_path=x.media_path,
                )
                for x in r.results
            ],
            attempts=r.attempts,
            revision=r.revision,
            zones=[zone_message(Zone(r.environment_id, z.zone_id, z.name, z.polygon)) for z in r.options.zones],
            created_at=convert.timestamp(r.created_at),
            updated_at=convert.timestamp(r.updated_at),
        )
        if r.started_at is not None:
            out.started_at.CopyFrom(convert.timestamp(r.started_at))
        if r.finished_at is not None:
            out.finished_at.CopyFrom(convert.timestamp(r.finished_at))
        return out


def upload_request(meta: jobs_pb2.JobUploadMetadata) -> UploadRequest:
    return UploadRequest(
        filename=meta.filename,
        name=meta.name,
        fps=meta.fps if meta.HasField("fps") else None,
        detection_threshold=meta.detection_threshold if meta.HasField("detection_threshold") else None,
        homography=convert.homography_spec(meta.homography) if meta.HasField("homography") else None,
        size_bytes=meta.size_bytes,
        zones=tuple(JobZone(z.zone_id, z.name, tuple((p.x, p.y) for p in z.polygon)) for z in meta.zones),
        idempotency_key=meta.idempotency_key,
        source=meta.source,
    )


async def _chunks(requests: AsyncIterator[jobs_pb2.UploadJobRequest]) -> AsyncIterator[bytes]:
    async for request in requests:
        if request.WhichOneof("part") != "chunk":
            raise InvalidArgument("only the first message carries `metadata`; every later one carries a `chunk`")
        yield request.chunk
