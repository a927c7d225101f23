"""``spoton.v1.JobService`` as the facade calls it: one method per RPC, with deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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
    """Thin async wrapper over the JobService stub; ``metadata`` goes on every call."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Metadata = ()) -> None:
        self._metadata = tuple(metadata)
        self._jobs = jobs_pb2_grpc.JobServiceStub(channel)

    async def upload_job(self, metadata: jobs_pb2.JobUploadMetadata, spool: BinaryIO) -> jobs_pb2.Job:
        """JobService.UploadJob: ``metadata``, then ``spool`` from its current position in chunks."""

        async def requests() -> AsyncIterator[jobs_pb2.UploadJobRequest]:
            yield jobs_pb2.UploadJobRequest(metadata=metadata)
            while chunk := await asyncio.to_thread(spool.read, UPLOAD_CHUNK_BYTES):
                yield jobs_pb2.UploadJobRequest(chunk=chunk)

        return await self._jobs.UploadJob(requests(), timeout=UPLOAD_TIMEOUT_S, metadata=self._metadata)

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
