"""``spoton.v1.JobService`` as the facade calls it: one method per RPC, with deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import BinaryIO

import grpc

from spoton.v1 import jobs_pb2, jobs_pb2_grpc
from spoton_facade.client import UNARY_TIMEOUT_S, Metadata

# An upload streams the whole file; the service answers once it has probed it.
UPLOAD_TIMEOUT_S = 3600.0
# Well under the gRPC message limit; large enough that per-message overhead is negligible.
UPLOAD_CHUNK_BYTES = 1024 * 1024
# CancelJob answers once the job has stopped (its task included).
CANCEL_TIMEOUT_S = 60.0


class JobClient:
    """Thin async wrapper over the JobService stub; ``metadata`` goes on every call.

    Uploads go through ``upload_channel``, a blocking channel (see
    :func:`~spoton_facade.client.open_upload_channel`); everything else through ``channel``.
    """

    def __init__(self, channel: grpc.aio.Channel, upload_channel: grpc.Channel, metadata: Metadata = ()) -> None:
        self._metadata = tuple(metadata)
        self._jobs = jobs_pb2_grpc.JobServiceStub(channel)
        self._uploads = jobs_pb2_grpc.JobServiceStub(upload_channel)

    async def upload_job(self, metadata: jobs_pb2.JobUploadMetadata, spool: BinaryIO) -> jobs_pb2.Job:
        """JobService.UploadJob: ``metadata``, then ``spool`` from its current position in chunks.

        Fails with ``grpc.aio.AioRpcError``, like every other call, with the server's status.
        """

        def requests() -> Iterator[jobs_pb2.UploadJobRequest]:  # read in gRPC's thread, off the event loop
            yield jobs_pb2.UploadJobRequest(metadata=metadata)
            while chunk := spool.read(UPLOAD_CHUNK_BYTES):
                yield jobs_pb2.UploadJobRequest(chunk=chunk)

        call = self._uploads.UploadJob.future(requests(), timeout=UPLOAD_TIMEOUT_S, metadata=self._metadata)
        try:
            return await asyncio.to_thread(call.result)
        except asyncio.CancelledError:
            call.cancel()  # the HTTP request went away: so does the upload
            raise
        except grpc.RpcError as exc:
            raise _as_aio_error(exc) from None

    async def get_job(self, job_id: str) -> jobs_pb2.Job:
        """JobService.GetJob."""
        request = jobs_pb2.GetJobRequest(job_id=job_id)
        return await self._jobs.GetJob(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def list_jobs(self, page_size: int, page_token: str, state: int) -> jobs_pb2.ListJobsResponse:
        """JobService.ListJobs; zero values mean "server default" / "no filter"."""
        request = jobs_pb2.ListJobsRequest(page_size=page_size, page_token=page_token, state=state)
        return await self._jobs.ListJobs(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def cancel_job(self, job_id: str) -> jobs_pb2.Job:
        """JobService.CancelJob; answers once the job has stopped."""
        request = jobs_pb2.CancelJobRequest(job_id=job_id)
        return await self._jobs.CancelJob(request, timeout=CANCEL_TIMEOUT_S, metadata=self._metadata)

    async def delete_job(self, job_id: str) -> None:
        """JobService.DeleteJob."""
        request = jobs_pb2.DeleteJobRequest(job_id=job_id)
        await self._jobs.DeleteJob(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    def watch_job(
        self, job_id: str, after_revision: int
    ) -> grpc.aio.UnaryStreamCall[jobs_pb2.WatchJobRequest, jobs_pb2.Job]:
        """JobService.WatchJob, with no deadline; the caller owns the call and must cancel it."""
        request = jobs_pb2.WatchJobRequest(job_id=job_id, after_revision=after_revision)
        return self._jobs.WatchJob(request, metadata=self._metadata)


def _as_aio_error(exc: grpc.RpcError) -> grpc.aio.AioRpcError:
    """A blocking call's error as the app's error handlers expect it."""
    call: grpc.Call = exc  # type: ignore[assignment]  # a failed call's error is also the call
    return grpc.aio.AioRpcError(
        call.code(),
        grpc.aio.Metadata(*(call.initial_metadata() or ())),
        grpc.aio.Metadata(*(call.trailing_metadata() or ())),
        call.details(),
    )
