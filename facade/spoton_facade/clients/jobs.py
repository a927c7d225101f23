"""``spoton.v1.JobService`` as the facade calls it: one method per RPC, with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import queue
from collections.abc import AsyncIterator, Iterator

import grpc

from spoton.v1 import jobs_pb2, jobs_pb2_grpc
from spoton_facade.clients.inference import UNARY_TIMEOUT_S, Metadata

# An upload streams the whole file; the service answers once it has probed it.
UPLOAD_TIMEOUT_S = 3600.0
# Well under the gRPC message limit; large enough that per-message overhead is negligible.
UPLOAD_CHUNK_BYTES = 1024 * 1024
# CancelJob answers once the job has stopped (its task included).
CANCEL_TIMEOUT_S = 60.0
# Chunks waiting between the HTTP body and the gRPC stream: what an upload holds in the
# facade's memory, at most (the body is read no faster than the service takes it).
UPLOAD_QUEUE_CHUNKS = 4
# How often a chunk waiting for room in the queue checks whether the call has ended.
UPLOAD_PUT_POLL_S = 0.2
# Ends the gRPC request stream (after a cancel, it only frees gRPC's thread).
_END = object()


class JobClient:
    """Thin async wrapper over the JobService stub; ``metadata`` goes on every call.

    Uploads go through ``upload_channel``, a blocking channel (see
    :func:`~spoton_facade.clients.inference.open_upload_channel`); everything else through ``channel``.
    """

    def __init__(self, channel: grpc.aio.Channel, upload_channel: grpc.Channel, metadata: Metadata = ()) -> None:
        self._metadata = tuple(metadata)
        self._jobs = jobs_pb2_grpc.JobServiceStub(channel)
        self._uploads = jobs_pb2_grpc.JobServiceStub(upload_channel)

    async def upload_job(self, metadata: jobs_pb2.JobUploadMetadata, chunks: AsyncIterator[bytes]) -> jobs_pb2.Job:
        """JobService.UploadJob: ``metadata``, then ``chunks`` as they come (never stored here).

        Fails with ``grpc.aio.AioRpcError``, like every other call, with the server's status;
        an error raised by ``chunks`` (a bad or cut-off body, the client gone) cancels the call,
        so the service drops the partial file, and propagates.
        """
        pending: queue.Queue[object] = queue.Queue(maxsize=UPLOAD_QUEUE_CHUNKS)

        def requests() -> Iterator[jobs_pb2.UploadJobRequest]:  # run in gRPC's thread, off the event loop
            yield jobs_pb2.UploadJobRequest(metadata=metadata)
            while (chunk := pending.get()) is not _END:
                yield jobs_pb2.UploadJobRequest(chunk=chunk)  # type: ignore[arg-type]  # bytes

        call = self._uploads.UploadJob.future(requests(), timeout=UPLOAD_TIMEOUT_S, metadata=self._metadata)
        try:
            async for chunk in _rechunk(chunks, UPLOAD_CHUNK_BYTES):
                if not await asyncio.to_thread(_put, pending, chunk, call):
                    break  # the service answered before the end (a refusal, or a retry's job)
            else:
                await asyncio.to_thread(_put, pending, _END, call)
            return await asyncio.to_thread(call.result)
        except grpc.RpcError as exc:
            raise _as_aio_error(exc) from None
        except BaseException:
            call.cancel()  # before the stream ends below: the service must not take a cut-off file
            raise
        finally:
            _end(pending)

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


async def _rechunk(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """``chunks`` regrouped into pieces of ``size`` bytes (the last one shorter)."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _put(pending: queue.Queue[object], item: object, call: grpc.Future) -> bool:
    """Queue ``item`` for the request stream; False once the call has ended (nobody reads)."""
    while True:
        try:
            pending.put(item, timeout=UPLOAD_PUT_POLL_S)
            return True
        except queue.Full:
            if call.done():
                return False


def _end(pending: queue.Queue[object]) -> None:
    """Make sure the request stream ends, so gRPC's thread does not wait on it for ever."""
    with contextlib.suppress(queue.Empty):
        while True:
            pending.get_nowait()
    pending.put_nowait(_END)


def _as_aio_error(exc: grpc.RpcError) -> grpc.aio.AioRpcError:
    """A blocking call's error as the app's error handlers expect it."""
    call: grpc.Call = exc  # type: ignore[assignment]  # a failed call's error is also the call
    return grpc.aio.AioRpcError(
        call.code(),
        grpc.aio.Metadata(*(call.initial_metadata() or ())),
        grpc.aio.Metadata(*(call.trailing_metadata() or ())),
        call.details(),
    )
