"""Jobs: an uploaded video becomes a single-camera environment plus a processing task, and
yields an annotated video, an events JSON and MOT tracks.

Upload. The file streams to ``<data_dir>/jobs/uploads/`` (never whole in memory, refused the
moment it passes SPOTON_JOB_MAX_UPLOAD_BYTES), is probed by decoding it, then moves into the
job's environment directory ``<data_dir>/jobs/<job_id>/`` (``environment.json`` and
``cameras/camera/sub_video_01.mp4``) by a rename, so it is stored once; the job is QUEUED. A
refused or cut-off upload leaves no file. At most SPOTON_MAX_CONCURRENT_UPLOADS stream at once,
each only while it fits on the disk (services/uploads.py). An upload with an idempotency key that
an earlier one used answers that one's job (services/idempotency.py).

Queue. The jobs table is the queue: a dispatcher claims the oldest queued job whenever fewer
than SPOTON_JOB_CONCURRENCY run here. A running job registers its directory as the
environment ``job-<job_id>`` (with the homography and zones, when given), starts a task over it
(:class:`TaskManager`), follows the task's progress, renders the annotated video from the
task's MOT export in a worker thread, and publishes the results under
``<media_root>/jobs/<job_id>/``.

Restarts. Queued jobs wait for the next process. Jobs that were running are run again from
the start (their task was failed by ``TaskManager.recover``), until a job has been started
SPOTON_JOB_MAX_ATTEMPTS times; then it fails, saying so. A shutdown leaves running jobs
RUNNING for exactly that.

Cancel stops the task or the rendering, removes partial results and ends the job CANCELLED.
Delete (finished jobs only) removes its files, environment, tasks, track points and event logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import enum
import json
import logging
import math
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path
from typing import Protocol

from spoton_inference.domain.environment import EnvironmentOrigin
from spoton_inference.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from spoton_inference.domain.events import TaskState
from spoton_inference.domain.geometry import HomographySpec
from spoton_inference.domain.job_progress import JobProgress, Snapshot
from spoton_inference.domain.job_types import (
    JobOptions,
    JobRecord,
    JobResult,
    JobState,
    JobZone,
    NewJob,
    ResultKind,
    VideoInfo,
)
from spoton_inference.domain.principal import current_principal
from spoton_inference.domain.rate_limit import RateLimiter
from spoton_inference.domain.scoping import require_visible, scope
from spoton_inference.domain.zones import new_zone
from spoton_inference.services.analytics import Analytics
from spoton_inference.services.audit import Audit, AuditAction, audited
from spoton_inference.services.catalog import CameraPatch, Catalog
from spoton_inference.services.idempotency import KeyClaim, KeyTaken, Operation, claim_for, replayed
from spoton_inference.services.request_args import decode_token, encode_token, parse_uuid
from spoton_inference.services.tasks import TaskAction, TaskManager
from spoton_inference.services.uploads import UploadGate, receive_to_file

log = logging.getLogger(__name__)

CAMERA_ID = "camera"
SUB_VIDEO = "sub_video_01.mp4"
MAX_PAGE_SIZE = 200
MAX_NAME_CHARS = 255
MAX_ZONES = 100
# How often a running job reads its task's progress and reports its own.
PROGRESS_INTERVAL_S = 0.5
# How long CancelJob waits for the job to stop before answering anyway.
CANCEL_WAIT_S = 15.0
# Watchers and the dispatcher also look at the table this often, for changes made by other
# instances of the service (changes made here wake them at once).
WATCH_POLL_S = 1.0
DISPATCH_POLL_S = 5.0
# While Triton is down, the dispatcher asks after it this often, so queued jobs start soon after it is back.
TRITON_POLL_S = 1.0
RESULT_FILES = {
    ResultKind.VIDEO: ("annotated.mp4", "video/mp4"),
    ResultKind.EVENTS: ("events.json", "application/json"),
    ResultKind.TRACKS: ("tracks.txt", "text/plain"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class JobSettings:
    """What jobs read of the settings (the root builds it: app.job_settings)."""

    data_dir: Path  # uploads and job directories under <data_dir>/jobs/
    media_root: Path  # results under <media_root>/jobs/<job_id>/
    job_concurrency: int = 1
    job_max_attempts: int = 3
    job_max_upload_bytes: int = 2 * 1024**3
    max_concurrent_uploads: int = 2
    upload_disk_reserve_bytes: int = 1024**3
    rate_limit_uploads_per_min: int = 10
    idempotency_key_ttl_s: float = 24 * 3600.0


class JobRecords(Protocol):
    """The jobs table, which is also the queue (storage/job_store.JobStore)."""

    async def insert(self, job: NewJob, key: tuple[KeyClaim, uuid.UUID] | None = None) -> JobRecord: ...
    async def get(self, job_id: str) -> JobRecord | None: ...
    async def list(
        self,
        *,
        limit: int,
        before: tuple[dt.datetime, str] | None,
        state: JobState | None,
        environment_ids: Collection[str] | None = None,
    ) -> list[JobRecord]: ...
    async def claim_next(self) -> JobRecord | None: ...
    async def report(
        self, job_id: str, *, step: str, snapshot: Snapshot, total_frames: int, task_id: str = ""
    ) -> None: ...
    async def rendering_pixel_rate(self) -> float: ...
    async def finish(
        self,
        job_id: str,
        state: JobState,
        *,
        step: str,
        error: str = "",
        results: tuple[JobResult, ...] = (),
        from_states: tuple[JobState, ...] = (JobState.QUEUED, JobState.RUNNING),
    ) -> JobRecord | None: ...
    async def requeue(self, job_id: str, step: str) -> None: ...
    async def ids(self) -> set[str]: ...
    async def in_state(self, state: JobState) -> list[JobRecord]: ...
    async def delete(self, job_id: str, environment_id: str) -> list[str] | None: ...


class UploadKeys(Protocol):
    """Idempotency keys of uploads (storage/idempotency_store.IdempotencyStore). ``reserve`` raises
    KeyTaken, its ``holder`` the earlier request."""

    async def reserve(self, claim: KeyClaim) -> uuid.UUID: ...
    async def release(self, claim: KeyClaim, reservation: uuid.UUID) -> None: ...


class EventLogs(Protocol):
    """Tasks' event logs (storage/redis_events.RedisEventLog)."""

    async def forget(self, task_id: str) -> None: ...


class Gallery(Protocol):
    """Tasks' Re-ID galleries (storage/gallery.RedisGallery)."""

    async def clear(self, scope: str, *, reset_ids: bool = False) -> None: ...


class IdentityMirror(Protocol):
    """Writes tasks' identities in the background (storage/identity_sync.IdentitySync)."""

    async def flush(self) -> None: ...


class Conversion(Protocol):
    @property
    def verdict(self) -> enum.Enum: ...
    @property
    def frames(self) -> int: ...


class PlayableVideos(Protocol):
    async def convert_in_place(self, path: Path) -> Conversion | None: ...


class JobMedia(Protocol):
    """Where results are served (files/media.MediaRoot): their URLs, and browser-playable videos."""

    @property
    def videos(self) -> PlayableVideos | None: ...
    def url(self, rel: Path) -> str: ...


# Reads a video file's format; UnsupportedMedia when it is not a decodable video (files/video_probe).
ProbeVideo = Callable[[Path], VideoInfo]
# Draws the tracks (MOT file) over the video into ``out`` at ``fps``, telling each frame written,
# until ``stop`` is set; returns the frames written. Blocking (pipeline/annotate.render_annotated).
RenderAnnotated = Callable[[Path, Path, Path, float, Callable[[int], None], threading.Event], int]


@dataclasses.dataclass(frozen=True, slots=True)
class UploadRequest:
    """The first message of an upload; ``None`` leaves a setting at the service's default."""

    filename: str
    name: str = ""
    fps: float | None = None
    detection_threshold: float | None = None
    homography: HomographySpec | None = None
    # The size the client announced, 0 if unknown: refused at once when over the limit.
    size_bytes: int = 0
    # As sent: validated on upload (ids generated for those without one).
    zones: tuple[JobZone, ...] = ()
    # A retry with the key of an earlier upload answers that upload's job ("" for none).
    idempotency_key: str = ""


class _TaskCancelled(Exception):
    """The job's task was cancelled directly (ControlTask), not through CancelJob."""


@dataclasses.dataclass(eq=False, slots=True)
class _Running:
    """A job this process runs."""

    # Set by the dispatcher right after creating the run, before anything can look at it.
    task: asyncio.Task[None] = dataclasses.field(init=False)
    task_id: str = ""
    # The rendering thread, while it runs, and what stops it.
    render: asyncio.Future[int] | None = None
    render_stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    # Set once the job's final state is being written: it can no longer be cancelled.
    ending: bool = False
    # Service shutdown (not a user's cancel): the job stays RUNNING, for the next start to resume.
    shutting_down: bool = False


class JobManager:
    def __init__(
        self,
        settings: JobSettings,
        store: JobRecords,
        keys: UploadKeys,
        catalog: Catalog,
        tasks: TaskManager,
        events: EventLogs,
        gallery: Gallery | None = None,
        identities: IdentityMirror | None = None,
        *,
        analytics: Analytics,
        media: JobMedia,
        probe_video: ProbeVideo,
        render_annotated: RenderAnnotated,
        audit: Audit | None = None,
    ) -> None:
        self._settings = settings
        self._audit = audit
        self._upload_limit = RateLimiter("uploads", per_minute=settings.rate_limit_uploads_per_min)
        self._analytics = analytics
        self._store = store
        self._keys = keys
        self._media = media
        self._probe_video = probe_video
        self._render_annotated = render_annotated
        self._gate = UploadGate(self._uploads_dir, settings.max_concurrent_uploads, settings.upload_disk_reserve_bytes)
        self._catalog = catalog
        self._tasks = tasks
        self._events = events
        self._gallery = gallery
        self._identities = identities
        self._running: dict[str, _Running] = {}
        self._wake = asyncio.Event()
        # Replaced after every change; watchers wait on the one they saw.
        self._changed = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def recover(self) -> None:
        """Put what a previous process left behind in order; call before :meth:`start`."""
        shutil.rmtree(self._uploads_dir, ignore_errors=True)  # uploads its end cut off
        known = await self._store.ids()
        jobs_dir = self._settings.data_dir / "jobs"
        for path in jobs_dir.iterdir() if jobs_dir.is_dir() else ():
            if path.name not in known:  # it ended between accepting an upload and recording it
                shutil.rmtree(path, ignore_errors=True)
        limit = self._settings.job_max_attempts
        for job in await self._store.in_state(JobState.RUNNING):
            self._remove_results(job.job_id, job.task_id)
            if job.attempts >= limit:
                error = (
                    f"interrupted by a restart of the inference service on each of its {job.attempts} "
                    f"starts (SPOTON_JOB_MAX_ATTEMPTS={limit}); upload the video again"
                )
                await self._store.finish(job.job_id, JobState.FAILED, step="interrupted", error=error)
                log.warning("job %s failed: %s", job.job_id, error)
            else:
                step = f"queued again: a restart of the service interrupted start {job.attempts} of {limit}"
                await self._store.requeue(job.job_id, step)
                log.info("job %s %s", job.job_id, step)

    def start(self) -> None:
        """Begin running queued jobs (the service calls this once its models are warm)."""
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="job-dispatcher")

    async def close(self) -> None:
        """Stop the queue; running jobs stay RUNNING in the record, to be run again on restart."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        runs = list(self._running.values())
        for run in runs:
            run.shutting_down = True
            run.task.cancel()
        await asyncio.gather(*(r.task for r in runs), return_exceptions=True)

    # -- requests ----------------------------------------------------------------------

    @audited(AuditAction.JOB_UPLOAD, lambda request, chunks: "job/new", lambda record: f"job/{record.job_id}")
    async def upload(self, request: UploadRequest, chunks: AsyncIterator[bytes]) -> JobRecord:
        """Receive, validate and queue an upload; refused uploads leave no file behind. A retry
        with an earlier upload's idempotency key answers its job without reading ``chunks``."""
        if scope() is not None:
            # Its environment is the job's own, which a credential limited to some cannot see.
            raise PermissionDenied(
                "an upload makes an environment of its own, outside the environments this credential is "
                "limited to; upload with a credential that is not limited to environments"
            )
        options, name = self._check(request)
        unkeyed = dataclasses.replace(request, idempotency_key="")
        claim = claim_for(Operation.UPLOAD_JOB, request.idempotency_key, unkeyed, self._settings.idempotency_key_ttl_s)
        key: tuple[KeyClaim, uuid.UUID] | None = None
        if claim is not None:
            try:
                key = (claim, await self._keys.reserve(claim))
            except KeyTaken as taken:
                return await self.get(replayed(claim, taken.holder))
        self._upload_limit.take(current_principal())
        job_id = str(uuid.uuid4())
        part = self._uploads_dir / f"{job_id}.part"
        job_dir = self._job_dir(job_id)
        try:
            with self._gate.admit(request.size_bytes) as slot:
                size = await receive_to_file(chunks, part, self._settings.job_max_upload_bytes, slot)
            video = await asyncio.to_thread(self._probe_video, part)
            target = job_dir / "cameras" / CAMERA_ID / SUB_VIDEO
            target.parent.mkdir(parents=True)
            os.replace(part, target)
            camera = {"id": CAMERA_ID, "name": name, "fps": options.fps or video.fps}
            doc = {"id": _environment_id(job_id), "name": f"Job: {name}", "cameras": [camera]}
            (job_dir / "environment.json").write_text(json.dumps(doc))
            new = NewJob(job_id, name, request.filename, size, video, options, _environment_id(job_id), CAMERA_ID)
            record = await self._store.insert(new, key)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            shutil.rmtree(job_dir, ignore_errors=True)
            if key is not None:  # free the key, so that a retry runs the upload again
                with contextlib.suppress(Exception):
                    await self._keys.release(*key)
            raise
        log.info("job %s queued: %s (%d bytes, %s %dx%d)", job_id, name, size, video.codec, video.width, video.height)
        self._notify()
        self._wake.set()
        return record

    async def get(self, job_id: str) -> JobRecord:
        record = await self._store.get(parse_uuid(job_id, "job id"))
        if record is None:
            raise NotFound(f"job {job_id!r} not found")
        require_visible(record.environment_id, f"job {job_id!r} not found")
        return record

    async def list(self, *, page_size: int, page_token: str, state: JobState | None) -> tuple[list[JobRecord], str]:
        """A page of jobs, newest first, and the token of the next page ('' at the end)."""
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        size = min(page_size or 50, MAX_PAGE_SIZE)
        before = decode_token(page_token) if page_token else None
        rows = await self._store.list(limit=size + 1, before=before, state=state, environment_ids=scope())
        token = encode_token(rows[size - 1].created_at, rows[size - 1].job_id) if len(rows) > size else ""
        return rows[:size], token

    @audited(AuditAction.JOB_CANCEL, lambda job_id: f"job/{job_id}")
    async def cancel(self, job_id: str) -> JobRecord:
        """Stop a queued or running job; answered once it has stopped."""
        job = await self.get(job_id)
        job_id = job.job_id
        if job.state is JobState.QUEUED:
            queued = (JobState.QUEUED,)
            done = await self._store.finish(job_id, JobState.CANCELLED, step="cancelled", from_states=queued)
            if done is not None:
                self._notify()
                return done
            job = await self.get(job_id)  # the queue took it meanwhile
        if job.state.is_final:
            raise FailedPrecondition(
                f"job {job_id} is {job.state.value}; only a queued or running job can be cancelled"
            )
        run = await self._running_here(job_id)
        if run is None:
            raise FailedPrecondition(
                f"job {job_id} is running in another instance of the service; send the cancel to that instance"
            )
        if run.ending:
            raise FailedPrecondition(f"job {job_id} is already finishing; it can no longer be cancelled")
        run.task.cancel()
        await asyncio.wait({run.task}, timeout=CANCEL_WAIT_S)
        return await self.get(job_id)

    @audited(AuditAction.JOB_DELETE, lambda job_id: f"job/{job_id}")
    async def delete(self, job_id: str) -> None:
        """Remove a finished job: its files, environment, tasks' rows and event logs."""
        job = await self.get(job_id)
        task_ids = await self._store.delete(job.job_id, job.environment_id)
        if task_ids is None:
            raise FailedPrecondition(
                f"job {job.job_id} is {job.state.value}; cancel it first (CancelJob, "
                f"POST /api/v1/jobs/{job.job_id}/cancel), then delete it"
            )
        with contextlib.suppress(NotFound):
            await self._catalog.delete_environment(job.environment_id)
        for task_id in task_ids:
            await self._events.forget(task_id)
            if self._gallery is not None:
                await self._gallery.clear(task_id, reset_ids=True)
            shutil.rmtree(self._settings.media_root / "tasks" / task_id, ignore_errors=True)
        shutil.rmtree(self._results_dir(job.job_id), ignore_errors=True)
        shutil.rmtree(self._job_dir(job.job_id), ignore_errors=True)
        self._notify()
        log.info("job %s deleted with tasks %s", job.job_id, task_ids)

    async def has_news(self, job_id: str, after_revision: int) -> bool:
        """Whether a watch from ``after_revision`` will send anything, now or later."""
        job = await self.get(job_id)
        return job.revision > after_revision or not job.state.is_final

    async def watch(self, job_id: str, after_revision: int) -> AsyncIterator[JobRecord]:
        """The job whenever its revision passes ``after_revision``; ends after a final state."""
        job = await self.get(job_id)
        while True:
            changed = self._changed
            if job.revision > after_revision:
                after_revision = job.revision
                yield job
            if job.state.is_final:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), WATCH_POLL_S)
            job = await self.get(job_id)

    async def result_path(self, job_id: str, kind: ResultKind) -> Path:
        job = await self.get(job_id)
        for result in job.results:
            if result.kind is kind:
                return self._settings.media_root / result.media_path
        raise NotFound(
            f"job {job.job_id} has no {kind.value} result: it is {job.state.value}, results come on completion"
        )

    def result_url(self, result: JobResult) -> str:
        return self._media.url(Path(result.media_path))

    # -- the queue ---------------------------------------------------------------------

    async def _dispatch(self) -> None:
        triton_was_down = False
        while True:
            self._wake.clear()
            try:
                # Queued jobs wait (QUEUED) while Triton is down and start once it is back,
                # rather than each starting a task that would wait, then fail.
                if len(self._running) < self._settings.job_concurrency:
                    triton_down = not await self._tasks.models_ready()
                    if triton_down and not triton_was_down:
                        log.warning("job queue: Triton is unavailable, queued jobs wait for it")
                    elif triton_was_down and not triton_down:
                        log.info("job queue: Triton is back, running queued jobs")
                    triton_was_down = triton_down
                while not triton_was_down and len(self._running) < self._settings.job_concurrency:
                    job = await self._store.claim_next()
                    if job is None:
                        break
                    run = self._running[job.job_id] = _Running()
                    run.task = asyncio.create_task(self._run(job, run), name=f"job-{job.job_id}")
                    self._notify()
            except Exception:  # PostgreSQL away: the jobs stay queued, try again shortly
                log.exception("job queue: could not claim the next job")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TRITON_POLL_S if triton_was_down else DISPATCH_POLL_S)

    async def _running_here(self, job_id: str) -> _Running | None:
        # The dispatcher registers a claimed job one step after the claim commits.
        for _ in range(20):
            if job_id in self._running:
                return self._running[job_id]
            await asyncio.sleep(0.05)
        return None

    async def _run(self, job: JobRecord, run: _Running) -> None:
        job_id = job.job_id
        try:
            try:
                results = await self._process(job, run)
            except asyncio.CancelledError:
                await self._stop(run, cancel_task=not run.shutting_down)
                if not run.shutting_down:
                    run.ending = True
                    self._remove_results(job_id, run.task_id)
                    await self._finish(job_id, JobState.CANCELLED)
                raise
            except _TaskCancelled as exc:
                run.ending = True
                self._remove_results(job_id, run.task_id)
                await self._finish(job_id, JobState.CANCELLED, str(exc))
            except Exception as exc:
                run.ending = True
                log.exception("job %s failed", job_id)
                await self._stop(run, cancel_task=True)
                self._remove_results(job_id, run.task_id)
                await self._finish(job_id, JobState.FAILED, str(exc) or type(exc).__name__)
            else:
                run.ending = True
                await self._finish(job_id, JobState.COMPLETED, results=results)
        finally:
            self._running.pop(job_id, None)
            self._wake.set()

    async def _process(self, job: JobRecord, run: _Running) -> tuple[JobResult, ...]:
        job_id = job.job_id
        await self._report(job_id, "preparing", Snapshot(0.0, None), job.total_frames)
        await self._make_playable(job_id)
        env = await self._catalog.register_directory(str(self._job_dir(job_id)), origin=EnvironmentOrigin.JOB)
        if job.options.homography is not None:
            await self._catalog.update_camera(
                env.environment_id, CAMERA_ID, CameraPatch(homography=job.options.homography)
            )
        for zone in job.options.zones:  # before the task starts: it reads the zones once
            # AlreadyExists: a start before a restart of the service created it.
            with contextlib.suppress(AlreadyExists):
                await self._analytics.create_zone(
                    env.environment_id, zone_id=zone.zone_id, name=zone.name, polygon=zone.polygon
                )
        # The job runs one task at a time on its own environment; allow_concurrent so that a
        # rerun is never refused over the task of an attempt a restart interrupted.
        starting = asyncio.ensure_future(
            self._tasks.start(
                env.environment_id, [], detection_threshold=job.options.detection_threshold, allow_concurrent=True
            )
        )
        try:
            task = await asyncio.shield(starting)
        except asyncio.CancelledError:
            # Let the start finish, so the cancel knows which task to stop.
            with contextlib.suppress(Exception):
                run.task_id = (await starting).task_id
            raise
        run.task_id = task.task_id
        # Rendering speed scales with the frame's pixels: earlier jobs' speed, at this size.
        render_prior = await self._store.rendering_pixel_rate() / max(job.video.width * job.video.height, 1)
        # Timed by the task's record (when it was created, when each count was written): the
        # counts and their times agree, however late this poll reads them.
        progress = JobProgress(task.total_frames, started=task.created_at.timestamp(), render_fps_prior=render_prior)
        snapshot = progress.processing(0, task.updated_at.timestamp())
        await self._report(job_id, "processing", snapshot, task.total_frames, task.task_id)
        while not task.state.is_final:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            try:
                task = await self._tasks.get(task.task_id)
                snapshot = progress.processing(task.frames_processed, task.updated_at.timestamp())
                await self._report(job_id, "processing", snapshot, task.total_frames)
            except Unavailable as exc:  # PostgreSQL away: the task goes on, and so does the job
                log.debug("job %s: progress not read or reported (%s); retrying", job_id, exc)
        if task.state is TaskState.CANCELLED:
            raise _TaskCancelled(f"its task {task.task_id} was cancelled (ControlTask)")
        if task.state is TaskState.FAILED:
            raise RuntimeError(f"processing failed: {task.error}")
        snapshot = progress.processing_done(task.frames_processed, task.updated_at.timestamp())
        await self._report(job_id, "processing", snapshot, task.total_frames)
        if self._identities is not None:
            # The task's identities are mirrored in the background: all in before the job is
            # done, so a delete right after it finds every row.
            await self._identities.flush()
        return await self._render_and_publish(job, run, progress, env.cameras[0].fps)

    async def _make_playable(self, job_id: str) -> None:
        """The upload becomes H.264 MP4 (faststart) in place, the same frames at the same times,
        before its environment is registered: the task tracks, and browsers play, one file."""
        videos = self._media.videos
        if videos is None:
            return
        made = await videos.convert_in_place(self._job_dir(job_id) / "cameras" / CAMERA_ID / SUB_VIDEO)
        if made is not None:
            log.info(
                "job %s: upload made playable in browsers (%s, %d frames)", job_id, made.verdict.value, made.frames
            )

    async def _render_and_publish(
        self, job: JobRecord, run: _Running, progress: JobProgress, fps: float
    ) -> tuple[JobResult, ...]:
        job_id, loop = job.job_id, asyncio.get_running_loop()
        exports = {e.name: e.path for e in await self._tasks.exports(run.task_id)}
        tracks = _export(exports, run.task_id, f"{CAMERA_ID}.global.txt")
        events = _export(exports, run.task_id, "events.json")
        out = self._results_dir(job_id)
        out.mkdir(parents=True, exist_ok=True)
        video_name = RESULT_FILES[ResultKind.VIDEO][0]
        partial = out / f"{video_name}.part"
        rendered = [0]  # written by the rendering thread, read here
        source = self._job_dir(job_id) / "cameras" / CAMERA_ID / SUB_VIDEO
        progress.rendering_started(loop.time())
        run.render = loop.run_in_executor(
            None,
            self._render_annotated,
            source,
            tracks,
            partial,
            fps,
            lambda n: rendered.__setitem__(0, n),
            run.render_stop,
        )
        done = False
        while not done:  # the last report, once it is done, holds the final figures
            await asyncio.wait({run.render}, timeout=PROGRESS_INTERVAL_S)
            done = run.render.done()
            frames = run.render.result() if done else rendered[0]
            await self._report(job_id, "rendering", progress.rendering(frames, loop.time()), progress.total_frames)
        os.replace(partial, out / video_name)
        shutil.copyfile(events, out / RESULT_FILES[ResultKind.EVENTS][0])
        shutil.copyfile(tracks, out / RESULT_FILES[ResultKind.TRACKS][0])
        return tuple(
            JobResult(kind, name, media_type, (out / name).stat().st_size, f"jobs/{job_id}/{name}")
            for kind, (name, media_type) in RESULT_FILES.items()
        )

    async def _stop(self, run: _Running, *, cancel_task: bool) -> None:
        """Stop what the job started: its rendering thread, and its task unless shutting down
        (the service's shutdown stops tasks itself)."""
        if run.render is not None:
            run.render_stop.set()
            await asyncio.wait({run.render})  # the thread stops at its next frame
        if cancel_task and run.task_id:
            with contextlib.suppress(FailedPrecondition, NotFound):
                await self._tasks.control(run.task_id, TaskAction.CANCEL)

    async def _report(self, job_id: str, step: str, snapshot: Snapshot, total: int, task_id: str = "") -> None:
        await self._store.report(job_id, step=step, snapshot=snapshot, total_frames=total, task_id=task_id)
        self._notify()

    async def _finish(self, job_id: str, state: JobState, error: str = "", results: tuple[JobResult, ...] = ()) -> None:
        await self._store.finish(job_id, state, step=state.value, error=error, results=results)
        self._notify()
        log.info("job %s %s%s", job_id, state.value, f": {error}" if error else "")

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- validation and places ---------------------------------------------------------

    def _check(self, request: UploadRequest) -> tuple[JobOptions, str]:
        filename = request.filename.strip()
        if not filename:
            raise InvalidArgument("metadata.filename is required: the name of the uploaded file")
        name = request.name.strip() or filename
        if len(filename) > MAX_NAME_CHARS or len(name) > MAX_NAME_CHARS:
            raise InvalidArgument(f"filename and name must be at most {MAX_NAME_CHARS} characters")
        limit = self._settings.job_max_upload_bytes
        if request.size_bytes > limit:
            raise ResourceExhausted(
                f"the file is {request.size_bytes} bytes, over the limit of {limit} bytes (SPOTON_JOB_MAX_UPLOAD_BYTES)"
            )
        if request.fps is not None and not (math.isfinite(request.fps) and 0 < request.fps <= 1000):
            raise InvalidArgument(f"fps must be above 0 and at most 1000, got {request.fps}")
        threshold = request.detection_threshold
        if threshold is not None and not (math.isfinite(threshold) and 0 < threshold < 1):
            raise InvalidArgument(f"detection_threshold must lie between 0 and 1, got {threshold}")
        homography = request.homography
        if homography is not None:
            try:
                homography.build()
            except InvalidArgument as exc:
                raise InvalidArgument(f"homography: {exc}") from exc
        return JobOptions(request.fps, threshold, homography, _zones(request.zones, homography)), name

    def _remove_results(self, job_id: str, task_id: str) -> None:
        shutil.rmtree(self._results_dir(job_id), ignore_errors=True)
        if task_id:
            shutil.rmtree(self._settings.media_root / "tasks" / task_id, ignore_errors=True)

    @property
    def _uploads_dir(self) -> Path:
        return self._settings.data_dir / "jobs" / "uploads"

    def _job_dir(self, job_id: str) -> Path:
        return self._settings.data_dir / "jobs" / job_id

    def _results_dir(self, job_id: str) -> Path:
        return self._settings.media_root / "jobs" / job_id


def _zones(zones: tuple[JobZone, ...], homography: HomographySpec | None) -> tuple[JobZone, ...]:
    """The zones validated as CreateZone validates them, with unique ids."""
    if not zones:
        return ()
    if homography is None:
        raise InvalidArgument(
            "zones need a homography: their polygons are in map metres, and without one the tracks "
            "have no map positions; send `homography` (image points to map points) with the zones"
        )
    if len(zones) > MAX_ZONES:
        raise InvalidArgument(f"a job may have at most {MAX_ZONES} zones, got {len(zones)}")
    checked = []
    for i, zone in enumerate(zones):
        try:
            checked.append(JobZone(*new_zone(zone.zone_id, zone.name, zone.polygon)))
        except InvalidArgument as exc:
            raise InvalidArgument(f"zones[{i}]: {exc}") from exc
    ids = [z.zone_id for z in checked]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise InvalidArgument(f"zone ids must be unique within a job; repeated: {repeated}")
    return tuple(checked)


def _environment_id(job_id: str) -> str:
    return f"job-{job_id}"


def _export(exports: dict[str, Path], task_id: str, name: str) -> Path:
    if name not in exports:
        raise NotFound(f"task {task_id} has no export {name!r}")
    return exports[name]
