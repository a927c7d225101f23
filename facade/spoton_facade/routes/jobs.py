"""``/api/v1/jobs``: upload a video, follow the job, download its results (JobService).

The upload is ``multipart/form-data``, its text fields first: the file part streams on to
``UploadJob`` as it arrives (never stored by the facade, so the service's copy is the only
one); the inference service decides whether it is a video. Results are files under the media
root, served with Range and ETag like every media file; the job (``GetJob``) says where they are.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import grpc
import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from spoton.v1 import jobs_pb2
from spoton_facade import to_proto
from spoton_facade.clients.inference import request_metadata
from spoton_facade.clients.jobs import JobClient
from spoton_facade.contract import UUID
from spoton_facade.convert import enum_number
from spoton_facade.idempotency import IdempotencyKeyHeader, idempotency_key
from spoton_facade.problems import LOOKUP_PROBLEMS, REASON_TO_HTTP, UPSTREAM_PROBLEMS, problem_responses
from spoton_facade.routes.media import serve_file
from spoton_facade.schemas.analytics import ZoneBody
from spoton_facade.schemas.base import from_proto
from spoton_facade.schemas.catalog import HomographyBody
from spoton_facade.schemas.jobs import Job, JobPage, JobSourceBody
from spoton_facade.settings import FacadeSettings
from spoton_facade.sse import PREFLIGHT_S, SSE_HEADERS, EventStreams, LastEventIdHeader
from spoton_facade.upload_form import FORM_OVERHEAD_BYTES, FormHead, StreamedForm

# The reason the inference service gives (trailing metadata) for an upload that is no video.
REASON_METADATA = "spoton-error-reason"
UNSUPPORTED_MEDIA = "unsupported-media-type"
SSE_EVENT = b"job_update"

# Result downloads answer like the media route.
DOWNLOAD_RESPONSES = {
    206: ResponseSpec(bytes, description="The requested byte range", generate_examples=False),
    304: ResponseSpec(None, description="The client's copy (If-None-Match) is current"),
    **problem_responses(404, 416),
    **UPSTREAM_PROBLEMS,
}

_encode = msgspec.json.Encoder().encode
# Job ids are UUIDs the service mints.
JobId = Annotated[str, PathParameter(pattern=UUID)]
# Every state but "unspecified", which as a filter would mean none and list every job.
JobStateFilter = Literal["queued", "running", "completed", "failed", "cancelled"]


def _provide_jobs(state: State, request: Request[Any, Any, Any]) -> JobClient:
    return JobClient(state.inference_channel, state.upload_channel, request_metadata(request))


@dataclasses.dataclass
class _UploadOperation(Operation):
    """The upload reads its multipart body itself (to stream it to disk), so Litestar cannot
    derive the request body's schema; it is declared here."""

    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING)
        number = Schema(type=OpenAPIType.NUMBER)
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["file"],
                        properties={
                            "file": Schema(type=OpenAPIType.STRING, format="binary", description="The video"),
                            "name": dataclasses.replace(text, description="Display name; default: the file name"),
                            "fps": dataclasses.replace(number, description="Frame rate to use instead of the file's"),
                            "detection_threshold": dataclasses.replace(
                                number, description="Detector score that starts a track, 0..1"
                            ),
                            "homography": dataclasses.replace(
                                text,
                                description='JSON: {"image_points": [[u, v], ...], "map_points": [[x, y], ...]} '
                                'and/or {"matrix": [9 values]}; without it tracks have no map coordinates',
                            ),
                            "zones": dataclasses.replace(
                                text,
                                description='JSON: [{"zone_id": "door", "name": "Door", "polygon": [[x, y], ...]}, '
                                "...], polygons in map metres (3 or more points, ids unique, generated when "
                                "empty); needs `homography`. Entries and exits go into the events JSON",
                            ),
                        },
                    )
                )
            },
        )


class JobBlocks:
    """Renders each ``Job`` of a WatchJob stream as an SSE block, its revision as the id."""

    def block(self, job: jobs_pb2.Job) -> bytes:
        # The same body as GET /api/v1/jobs/{job_id}.
        return b"id: %d\nevent: %s\ndata: %s\n\n" % (job.revision, SSE_EVENT, _encode(from_proto(job, Job)))


class JobController(Controller):
    """Jobs from uploaded videos: upload, list, inspect, follow, cancel, delete, download."""

    path = "/jobs"
    tags = ("jobs",)
    dependencies = {"jobs": Provide(_provide_jobs, sync_to_thread=False)}  # noqa: RUF012 (Litestar's API)

    @post(
        summary="Upload a video as a job",
        description=(
            "`multipart/form-data` with the video as the `file` part, after the text fields (400 for a "
            "field after the file: the file streams on to the service as it arrives). It is checked by "
            "decoding it, not by its name: 415 when it is no video the service can decode, 413 when it is "
            "larger than `SPOTON_JOB_MAX_UPLOAD_BYTES` (refused while it streams in), 400 for a bad field, "
            "503 with `Retry-After` while `SPOTON_MAX_CONCURRENT_UPLOADS` uploads are streaming, 507 when "
            "it would not fit on the server's disk. With an `Idempotency-Key` header a retry answers the "
            "job the first upload created (409 while that upload is still streaming, 422 for other "
            "fields). A refused upload leaves no file behind. Answers the queued job."
        ),
        status_code=201,
        request_max_body_size=None,  # limited by the job upload setting, as the body streams in
        operation_class=_UploadOperation,
        responses={**problem_responses(400, 409, 413, 415, 422, 503, 507), **UPSTREAM_PROBLEMS},
    )
    async def upload_job(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[FacadeSettings],
        jobs: NamedDependency[JobClient],
        key_header: IdempotencyKeyHeader = None,
    ) -> Response[Job]:
        """The text fields, then JobService.UploadJob with the file as it arrives."""
        media_type, options = request.content_type
        if media_type != "multipart/form-data" or not options.get("boundary"):
            raise HTTPException(status_code=415, detail="send multipart/form-data with the video as the `file` part")
        limit = settings.job_max_upload_bytes
        declared = request.content_length
        if declared is not None and declared > limit + FORM_OVERHEAD_BYTES:
            raise HTTPException(
                status_code=413,
                detail=f"the body is {declared} bytes, over the upload limit of {limit} bytes "
                "(SPOTON_JOB_MAX_UPLOAD_BYTES)",
            )
        form = StreamedForm(request.stream(), options["boundary"], limit)
        try:
            metadata = _metadata(await form.head(), idempotency_key(key_header))
            async with contextlib.aclosing(form.file()) as chunks:
                job = await _upload(jobs, metadata, chunks)
        finally:
            await form.aclose()
        location = request.app.route_reverse("job", job_id=job.job_id)
        return Response(from_proto(job, Job), status_code=201, headers={"Location": location})

    # A custom method (AIP-136): ':' cannot occur in a job id, so it never shadows one.
    @post(
        "/:fetch",
        summary="Make a job of a video in object storage",
        description=(
            "Instead of an upload: `source` names an object, `s3://bucket/key`, in the object storage the "
            "inference server is set up for (SPOTON_S3_*; credentials never travel in the request). The server "
            "fetches it, verified by size and ETag, and checks it as an upload: 404 or 403 naming the key when it "
            "is missing or may not be read, 413 over `SPOTON_JOB_MAX_UPLOAD_BYTES`, 415 when it is no video, "
            "503/507 as for uploads. `Idempotency-Key` as for uploads. Answers the queued job."
        ),
        status_code=201,
        responses={**problem_responses(400, 403, 404, 409, 413, 415, 422, 503, 507), **UPSTREAM_PROBLEMS},
    )
    async def fetch_job(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[JobSourceBody],
        jobs: NamedDependency[JobClient],
        key_header: IdempotencyKeyHeader = None,
    ) -> Response[Job]:
        """JobService.UploadJob with `metadata.source` and no chunk."""
        metadata = jobs_pb2.JobUploadMetadata(
            source=data.source, name=data.name, idempotency_key=idempotency_key(key_header)
        )
        if data.fps is not None:
            metadata.fps = data.fps
        if data.detection_threshold is not None:
            metadata.detection_threshold = data.detection_threshold
        if data.homography is not None:
            metadata.homography.CopyFrom(to_proto.homography(data.homography))
        metadata.zones.extend(to_proto.zone(z) for z in data.zones)
        job = await _upload(jobs, metadata, _no_chunks())
        location = request.app.route_reverse("job", job_id=job.job_id)
        return Response(from_proto(job, Job), status_code=201, headers={"Location": location})

    @get(
        summary="List jobs",
        description="Newest first; `status` keeps one state; page with `next_page_token`.",
        responses=UPSTREAM_PROBLEMS,
    )
    async def list_jobs(
        self,
        jobs: NamedDependency[JobClient],
        page_size: Annotated[int, QueryParameter(ge=0, le=200, description="0: the service's default (50)")] = 0,
        page_token: Annotated[str, QueryParameter(description="`next_page_token` of the page before")] = "",
        status: Annotated[JobStateFilter | None, QueryParameter(description="Only jobs in this state")] = None,
    ) -> JobPage:
        """JobService.ListJobs."""
        number = enum_number(jobs_pb2.JobState.DESCRIPTOR, status) if status else 0
        return from_proto(await jobs.list_jobs(page_size, page_token, number), JobPage)

    @get("/{job_id:str}", name="job", summary="Get a job", responses=LOOKUP_PROBLEMS)
    async def get_job(self, job_id: JobId, jobs: NamedDependency[JobClient]) -> Job:
        """JobService.GetJob: state, step, progress, `eta_seconds`, and the results once completed."""
        return from_proto(await jobs.get_job(job_id), Job)

    @post(
        "/{job_id:str}/cancel",
        summary="Cancel a job",
        description="Stops a queued or running job; answered once it has stopped (`cancelled`, partial "
        "results removed). 409 for a finished job.",
        status_code=200,
        responses={**problem_responses(404, 409), **UPSTREAM_PROBLEMS},
    )
    async def cancel_job(self, job_id: JobId, jobs: NamedDependency[JobClient]) -> Job:
        """JobService.CancelJob."""
        return from_proto(await jobs.cancel_job(job_id), Job)

    @delete(
        "/{job_id:str}",
        summary="Delete a job",
        description="Removes a finished job with its files, environment, task and track rows. 409 while "
        "it is queued or running: cancel it first.",
        responses={**problem_responses(404, 409), **UPSTREAM_PROBLEMS},
    )
    async def delete_job(self, job_id: JobId, jobs: NamedDependency[JobClient]) -> None:
        """JobService.DeleteJob."""
        await jobs.delete_job(job_id)

    @get(
        "/{job_id:str}/video",
        summary="Download the annotated video",
        description="H.264 MP4 with boxes, ids and trails; Range (206), ETag and If-None-Match as for media. "
        "404 until the job has completed.",
        media_type="video/mp4",
        responses=DOWNLOAD_RESPONSES,
    )
    async def get_video(
        self,
        job_id: JobId,
        jobs: NamedDependency[JobClient],
        settings: NamedDependency[FacadeSettings],
        range_header: Annotated[str | None, HeaderParameter(name="Range")] = None,
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
        if_range: Annotated[str | None, HeaderParameter(name="If-Range")] = None,
    ) -> Stream:
        """The job's annotated video, from the media root."""
        return await _download(
            jobs, settings, job_id, jobs_pb2.JOB_RESULT_KIND_VIDEO, range_header, if_none_match, if_range
        )

    @get(
        "/{job_id:str}/tracks",
        summary="Download the MOT tracks",
        description="MOTChallenge `frame,id,x,y,w,h,conf,-1,-1,-1` (frame from 1, id the person's global id). "
        "404 until the job has completed.",
        media_type="text/plain",
        responses=DOWNLOAD_RESPONSES,
    )
    async def get_tracks(
        self,
        job_id: JobId,
        jobs: NamedDependency[JobClient],
        settings: NamedDependency[FacadeSettings],
        range_header: Annotated[str | None, HeaderParameter(name="Range")] = None,
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
        if_range: Annotated[str | None, HeaderParameter(name="If-Range")] = None,
    ) -> Stream:
        """The job's tracks, from the media root."""
        return await _download(
            jobs, settings, job_id, jobs_pb2.JOB_RESULT_KIND_TRACKS, range_header, if_none_match, if_range
        )

    @get(
        "/{job_id:str}/events",
        summary="Download the events JSON, or follow the job (SSE)",
        description=(
            "With `Accept: text/event-stream` (what `EventSource` sends): the job's progress as Server-Sent "
            "Events over JobService.WatchJob: `event: job_update`, `id: <revision>`, `data:` the job as JSON "
            "(as `GET /api/v1/jobs/{job_id}`); `: heartbeat` comments while idle; `Last-Event-ID` resumes; "
            "the stream ends after the job's final state; 204 when it is over and nothing follows. "
            'Otherwise: the events JSON (`{"events": [{"type": "appeared" | "left", "frame", '
            '"time_s", "camera_id", "global_id"}]}`; with zones also `zone_enter` / `zone_exit` with '
            "`zone_id`, `zone_name` and `map_xy`) with Range and ETag; 404 until completed."
        ),
        media_type="application/json",
        responses={
            204: ResponseSpec(None, description="SSE: the job is over and nothing follows the resume point"),
            **DOWNLOAD_RESPONSES,
        },
    )
    async def get_events(
        self,
        job_id: JobId,
        jobs: NamedDependency[JobClient],
        settings: NamedDependency[FacadeSettings],
        event_streams: NamedDependency[EventStreams],
        request: Request[Any, Any, Any],
        resume_header: LastEventIdHeader = None,
        range_header: Annotated[str | None, HeaderParameter(name="Range")] = None,
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
        if_range: Annotated[str | None, HeaderParameter(name="If-Range")] = None,
    ) -> Stream:
        """The events JSON, or JobService.WatchJob as SSE (the call is cancelled when the client goes)."""
        if "text/event-stream" not in request.headers.get("accept", ""):
            return await _download(
                jobs, settings, job_id, jobs_pb2.JOB_RESULT_KIND_EVENTS, range_header, if_none_match, if_range
            )
        call = jobs.watch_job(job_id, resume_header or 0)
        stream = event_streams.open(call, instance=request.url.path, blocks=JobBlocks())
        if not await stream.preflight(PREFLIGHT_S):
            return Stream((), status_code=204)
        # In the headers: the handler's declared media type (the JSON download's) would win.
        headers = {**SSE_HEADERS, "Content-Type": "text/event-stream"}
        return Stream(stream, headers=headers, background=BackgroundTask(stream.aclose))


async def _download(
    jobs: JobClient,
    settings: FacadeSettings,
    job_id: str,
    kind: int,
    range_header: str | None,
    if_none_match: str | None,
    if_range: str | None,
) -> Stream:
    job = await jobs.get_job(job_id)
    result = next((r for r in job.results if r.kind == kind), None)
    if result is None:
        what = jobs_pb2.JobResultKind.Name(kind).removeprefix("JOB_RESULT_KIND_").lower()
        state = jobs_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()
        raise NotFoundException(f"job {job.job_id} has no {what} result: it is {state}; results come on completion")
    return await serve_file(settings.media_root, result.media_path, range_header, if_none_match, if_range)


def _metadata(form: FormHead, key: str) -> jobs_pb2.JobUploadMetadata:
    # No size_bytes: the file's size is not known before it has streamed through; the service
    # counts it (limit, disk space) as it arrives.
    out = jobs_pb2.JobUploadMetadata(filename=form.filename, name=form.fields.get("name", ""), idempotency_key=key)
    if fps := form.fields.get("fps", "").strip():
        out.fps = _number("fps", fps)
    if threshold := form.fields.get("detection_threshold", "").strip():
        out.detection_threshold = _number("detection_threshold", threshold)
    if homography := form.fields.get("homography", "").strip():
        try:
            body = msgspec.json.decode(homography, type=HomographyBody)
        except msgspec.MsgspecError as exc:
            raise ClientException(f"homography is not valid: {exc}") from exc
        out.homography.CopyFrom(to_proto.homography(body))
    if zones := form.fields.get("zones", "").strip():
        try:
            bodies = msgspec.json.decode(zones, type=list[ZoneBody])
        except msgspec.MsgspecError as exc:
            raise ClientException(
                f'zones is not valid: {exc}; send a JSON list of {{"zone_id", "name", "polygon": [[x, y], ...]}}'
            ) from exc
        out.zones.extend(to_proto.zone(b) for b in bodies)
    return out


async def _upload(jobs: JobClient, metadata: jobs_pb2.JobUploadMetadata, chunks: AsyncIterator[bytes]) -> jobs_pb2.Job:
    """JobService.UploadJob, its refusals as the HTTP statuses made for them (_upload_refusal)."""
    try:
        return await jobs.upload_job(metadata, chunks)
    except grpc.aio.AioRpcError as exc:
        refusal = _upload_refusal(exc)
        if refusal is None:
            raise
        raise refusal from exc


async def _no_chunks() -> AsyncIterator[bytes]:
    """The file of a job whose video the service fetches itself: none."""
    return
    yield


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ClientException(f"{name} must be a number, got {value!r}") from None


def _upload_refusal(exc: grpc.aio.AioRpcError) -> HTTPException | None:
    """413 and 415 for the refusals HTTP has its own status for; None for the usual mapping
    (which maps the reasons in problems.REASON_TO_HTTP: 503 too many uploads, 507 no space)."""
    reasons = [v for k, v in (exc.trailing_metadata() or ()) if k == REASON_METADATA]
    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and not set(reasons) & REASON_TO_HTTP.keys():
        return HTTPException(status_code=413, detail=exc.details())
    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT and UNSUPPORTED_MEDIA in reasons:
        return HTTPException(status_code=415, detail=exc.details())
    return None
