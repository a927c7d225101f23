"""A thin asyncio client for the spoton.v1 API.

Example:
    async with SpotOnClient("127.0.0.1:50051", api_key="spk_...") as client:
        env = await client.register_environment("/data/site-a")
        task = await client.start_task(env.environment_id)
        async for event in client.watch(task.task_id):
            print(event.WhichOneof("payload"))
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import grpc

from spoton.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)
from spoton_client.auth import authed_channel

# A watch the server drops (UNAVAILABLE) is reopened this many times in a row before the error is raised.
WATCH_RETRIES = 5
T = TypeVar("T")
# A StartTask that timed out or found the service unreachable is sent again this many times,
# with the same idempotency key, so a retry never starts a second task.
START_RETRIES = 3
START_TIMEOUT_S = 30.0
RETRIED_CODES = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
# Upload chunk size: well under the server's message limit (SPOTON_GRPC_MAX_MESSAGE_BYTES).
UPLOAD_CHUNK_BYTES = 1024 * 1024


class SpotOnClient:
    def __init__(
        self,
        target: str,
        metadata: tuple[tuple[str, str], ...] = (),
        *,
        api_key: str | None = None,
        token: str | None = None,
    ) -> None:
        """Every call carries ``token``, else ``api_key``, else SPOTON_API_KEY (spoton_client.auth)."""
        self.target = target
        self._metadata = metadata
        self._channel = authed_channel(target, api_key=api_key, token=token)
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(self._channel)
        self.tasks = tasks_pb2_grpc.TaskServiceStub(self._channel)
        self.system = system_pb2_grpc.SystemServiceStub(self._channel)
        self.jobs = jobs_pb2_grpc.JobServiceStub(self._channel)

    async def __aenter__(self) -> SpotOnClient:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self._channel.close()

    async def health(self, timeout_s: float = 5.0) -> system_pb2.GetHealthResponse:
        return await self.system.GetHealth(system_pb2.GetHealthRequest(), timeout=timeout_s, metadata=self._metadata)

    async def register_environment(self, path: str | Path) -> catalog_pb2.Environment:
        """A directory (made absolute here), or ``s3://bucket/prefix`` in the server's object storage."""
        request = catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=environment_path(path))
        response = await self.catalog.RegisterEnvironmentFromDirectory(request, timeout=120, metadata=self._metadata)
        return response.environment

    async def start_task(
        self, environment_id: str, camera_ids: list[str] | None = None, idempotency_key: str = ""
    ) -> tasks_pb2.Task:
        """Start a task, retrying a timeout or an outage with one idempotency key (a fresh UUID
        unless given), so that however often it is sent, one task starts."""
        request = tasks_pb2.StartTaskRequest(
            environment_id=environment_id,
            camera_ids=camera_ids or [],
            idempotency_key=idempotency_key or str(uuid.uuid4()),
        )
        for attempt in range(START_RETRIES + 1):
            try:
                return (await self.tasks.StartTask(request, timeout=START_TIMEOUT_S, metadata=self._metadata)).task
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRIED_CODES or attempt == START_RETRIES:
                    raise
                await asyncio.sleep(0.25 * 2**attempt)
        raise AssertionError("unreachable")

    async def get_task(self, task_id: str) -> tasks_pb2.Task:
        return await self.tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id), timeout=10, metadata=self._metadata)

    def watch(self, task_id: str, after_sequence: int = 0) -> AsyncIterator[tasks_pb2.TaskEvent]:
        """Every event of the task until it ends; a dropped stream is resumed where it broke."""
        return _resumed(
            lambda after: self.tasks.WatchTask(
                tasks_pb2.WatchTaskRequest(task_id=task_id, after_sequence=after), metadata=self._metadata
            ),
            lambda event: event.sequence,
            after_sequence,
        )

    async def download_exports(self, task_id: str, out_dir: Path) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        listing = await self.tasks.ListTaskExports(
            tasks_pb2.ListTaskExportsRequest(task_id=task_id), timeout=30, metadata=self._metadata
        )
        written = []
        for f in listing.files:
            target = out_dir / Path(f.name).name
            tmp = target.with_name(target.name + ".part")
            with tmp.open("wb") as fh:
                call = self.tasks.GetTaskExport(
                    tasks_pb2.GetTaskExportRequest(task_id=task_id, name=f.name), timeout=300, metadata=self._metadata
                )
                async for chunk in call:
                    fh.write(chunk.data)
            tmp.replace(target)
            written.append(target)
        return written

    async def create_environment(self, environment: catalog_pb2.Environment) -> catalog_pb2.Environment:
        request = catalog_pb2.CreateEnvironmentRequest(environment=environment)
        return await self.catalog.CreateEnvironment(request, timeout=60, metadata=self._metadata)

    async def delete_environment(self, environment_id: str) -> None:
        request = catalog_pb2.DeleteEnvironmentRequest(environment_id=environment_id)
        await self.catalog.DeleteEnvironment(request, timeout=60, metadata=self._metadata)

    async def control_task(self, task_id: str, action: int) -> tasks_pb2.Task:
        request = tasks_pb2.ControlTaskRequest(task_id=task_id, action=action)
        return (await self.tasks.ControlTask(request, timeout=60, metadata=self._metadata)).task

    async def upload_job(self, path: Path, metadata: jobs_pb2.JobUploadMetadata) -> jobs_pb2.Job:
        """Stream ``path`` to ``JobService.UploadJob`` in chunks (never whole in memory)."""
        metadata.size_bytes = metadata.size_bytes or path.stat().st_size
        metadata.idempotency_key = metadata.idempotency_key or str(uuid.uuid4())

        async def requests() -> AsyncIterator[jobs_pb2.UploadJobRequest]:
            yield jobs_pb2.UploadJobRequest(metadata=metadata)
            with path.open("rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, UPLOAD_CHUNK_BYTES):
                    yield jobs_pb2.UploadJobRequest(chunk=chunk)

        return await self.jobs.UploadJob(requests(), metadata=self._metadata)

    def watch_job(self, job_id: str) -> AsyncIterator[jobs_pb2.Job]:
        """The job at every change until its final state; a dropped stream is resumed."""
        return _resumed(
            lambda after: self.jobs.WatchJob(
                jobs_pb2.WatchJobRequest(job_id=job_id, after_revision=after), metadata=self._metadata
            ),
            lambda job: job.revision,
            0,
        )

    async def download_job_result(self, job_id: str, kind: int, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        call = self.jobs.GetJobResult(
            jobs_pb2.GetJobResultRequest(job_id=job_id, kind=kind), timeout=600, metadata=self._metadata
        )
        with tmp.open("wb") as fh:
            async for chunk in call:
                fh.write(chunk.data)
        tmp.replace(target)
        return target

    async def delete_job(self, job_id: str) -> None:
        await self.jobs.DeleteJob(jobs_pb2.DeleteJobRequest(job_id=job_id), timeout=60, metadata=self._metadata)

    async def get_environment(self, environment_id: str) -> catalog_pb2.Environment:
        request = catalog_pb2.GetEnvironmentRequest(environment_id=environment_id)
        return await self.catalog.GetEnvironment(request, timeout=30, metadata=self._metadata)

    async def test_connection(self, source_url: str) -> catalog_pb2.TestCameraConnectionResponse:
        """Whether the server can read a live source, with its codec, size and fps."""
        request = catalog_pb2.TestCameraConnectionRequest(source_url=source_url)
        return await self.catalog.TestCameraConnection(request, timeout=60, metadata=self._metadata)


async def _resumed(
    open_stream: Callable[[int], grpc.aio.UnaryStreamCall], position: Callable[[T], int], after: int
) -> AsyncIterator[T]:
    """The items of a server stream that resumes after a position (a task's sequence, a job's
    revision): reopened after the last item seen when the server is briefly UNAVAILABLE, with
    back-off, at most ``WATCH_RETRIES`` times in a row."""
    retries = 0
    while True:
        call = open_stream(after)
        try:
            async for item in call:
                after, retries = position(item), 0
                yield item
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or retries >= WATCH_RETRIES:
                raise
            retries += 1
            await asyncio.sleep(0.25 * 2**retries)
        finally:
            call.cancel()


def environment_path(path: str | Path) -> str:
    """What RegisterEnvironmentFromDirectory is sent: an absolute directory, or an s3:// URI as it is.

    >>> environment_path("s3://recordings/sites/lobby")
    's3://recordings/sites/lobby'
    >>> environment_path("/data/site-a")
    '/data/site-a'
    """
    if isinstance(path, str) and path[:5].lower() == "s3://":
        return path
    return str(Path(path).resolve())
