"""Jobs: an uploaded video becomes a single-camera environment plus a processing task, and
yields an annotated video, an events JSON and MOT tracks.

Upload. The file streams to ``<jobs_dir>/uploads/<replica>/`` (SPOTON_JOBS_DIR; never whole
in memory, refused the moment it passes SPOTON_JOB_MAX_UPLOAD_BYTES), is probed by decoding it,
then moves into the job's environment directory ``<jobs_dir>/<job_id>/`` (``environment.json`` and
``cameras/camera/sub_video_01.mp4``) by a rename, so it is stored once; the job is QUEUED. A
refused or cut-off upload leaves no file. At most SPOTON_MAX_CONCURRENT_UPLOADS stream at once,
each only while it fits on the disk (services/uploads.py). Instead of streaming a file, a client
may name an object, ``s3://bucket/key``: it is fetched through the object store (SPOTON_S3_*)
to the same place, verified by size and ETag, and goes on as an upload would. An upload with an idempotency key that
an earlier one used answers that one's job (services/idempotency.py).

Queue. The jobs table is the queue: a dispatcher claims the oldest queued job whenever fewer
than SPOTON_JOB_CONCURRENCY run here, recording this replica as its owner in the same statement.
Replicas sharing the database share the jobs directory, so any replica runs any upload. A
running job registers its directory as the environment ``job-<job_id>`` (with the homography
and zones, when given), starts a task over it (:class:`TaskManager`), follows the task's
progress, renders the annotated video from the task's MOT export in a worker thread, and
publishes the results under ``<media_root>/jobs/<job_id>/``.

Restarts. Queued jobs wait for the next process. Jobs that were running are run again from
the start (their task was failed by ``TaskManager.recover``), until a job has been started
SPOTON_JOB_MAX_ATTEMPTS times; then it fails, saying so. A shutdown leaves running jobs
RUNNING for exactly that. At start-up a replica does this to the running jobs it owns and to
those of replicas whose lease lapsed, never to a live replica's; while it runs, it sweeps the
jobs of replicas whose lease lapsed since every lease TTL / 4 (a pod gone for good never comes
back to its jobs). A requeue is conditional on the claim it undoes, so of replicas sweeping at
once exactly one requeues a job, and a replica that lost its claim stops the job's run. A
replica whose lease lapsed (Redis away for longer than its TTL) stops its runs, requeues their
jobs unless another replica did first, and claims nothing for one TTL.

Cancel stops the task or the rendering, removes partial results and ends the job CANCELLED. A
cancel that reaches a replica other than the job's goes to the job's task while it processes
(task controls are passed to the replica running the task), and that replica ends the job.
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
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote

from spoton_inference.domain.environment import BucketSource, EnvironmentOrigin, RemoteObject, parse_bucket_uri
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
from spoton_inference.services.task_ports import Lease
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
# Files under the jobs directory that nothing accounts for (a job directory the database does
# not know, a lapsed replica's cut-off upload) are removed only once untouched this long:
# another replica may be between writing a job's files and recording the job.
ORPHAN_FILES_GRACE_S = 15 * 60.0
# Sweeps for the running jobs of replicas whose lease lapsed come this many times per lease TTL.
SWEEPS_PER_LEASE_TTL = 4
UPLOADS = "uploads"
RESULT_FILES = {
    ResultKind.VIDEO: ("annotated.mp4", "video/mp4"),
    ResultKind.EVENTS: ("events.json", "application/json"),
    ResultKind.TRACKS: ("tracks.txt", "text/plain"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class JobSettings:
    """What jobs read of the settings (the root builds it: app.job_settings)."""

    jobs_dir: Path  # SPOTON_JOBS_DIR: uploads and job directories, shared by the replicas of a database
    media_root: Path  # results under <media_root>/jobs/<job_id>/
    job_concurrency: int = 1
    job_max_attempts: int = 3
    job_max_upload_bytes: int = 2 * 1024**3
    max_concurrent_uploads: int = 2
    upload_disk_reserve_bytes: int = 1024**3
    rate_limit_uploads_per_min: int = 10
    idempotency_key_ttl_s: float = 24 * 3600.0


@dataclasses.dataclass(frozen=True, slots=True)
class JobClaim:
    """One start of a job: the replica that claimed it and which attempt it is. A run's writes
    and a requeue hold only while the job still runs under it."""

    owner: str
    attempt: int


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
    async def claim_next(self, owner: str) -> JobRecord | None: ...
    async def report(
        self,
        job_id: str,
        *,
        step: str,
        snapshot: Snapshot,
        total_frames: int,
        task_id: str = "",
        claim: JobClaim | None = None,
    ) -> bool: ...
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
        claim: JobClaim | None = None,
    ) -> JobRecord | None: ...
    async def requeue(self, job_id: str, step: str, claim: JobClaim) -> bool: ...
    async def running(self) -> list[tuple[JobRecord, str]]: ...  # with each one's owner
    async def ids(self) -> set[str]: ...
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


class SourceObjects(Protocol):
    """Objects a job may take its video from (files/object_store.ObjectStore): NotFound and
    PermissionDenied name ``s3://bucket/key``; Unavailable after retrying transient errors."""

    async def head(self, bucket: str, key: str) -> RemoteObject: ...
    async def download(self, obj: RemoteObject, dest: Path, progress: Callable[[int], None] | None = None) -> None: ...


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
    # s3://bucket/key: the video is fetched from object storage, not streamed ("" for an upload).
    source: str = ""


class _TaskCancelled(Exception):
    """The job's task was cancelled directly (ControlTask), not through CancelJob."""


class _ClaimLost(Exception):
    """The job no longer runs under this run's claim: this replica's lease lapsed and another
    requeued the job. The run stops and writes nothing more to the job."""


@dataclasses.dataclass(eq=False, slots=True)
class _Running:
    """A job this process runs."""

    # Set by the dispatcher right after creating the run, before anything can look at it.
    task: asyncio.Task[None] = dataclasses.field(init=False)
    # The claim this run holds; its writes to the job hold only under it.
    claim: JobClaim = dataclasses.field(init=False)
    task_id: str = ""
    # The rendering thread, while it runs, and what stops it.
    render: asyncio.Future[int] | None = None
    render_stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    # Set once the job's final state is being written: it can no longer be cancelled.
    ending: bool = False
    # Service shutdown (not a user's cancel): the job stays RUNNING, for the next start to resume.
    shutting_down: bool = False
    # This replica's lease was lost (not a user's cancel): the job goes back to the queue.
    lease_lost: bool = False


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
        lease: Lease,
        audit: Audit | None = None,
        objects: SourceObjects | None = None,
    ) -> None:
        self._settings = settings
        # Where ``s3://`` sources are fetched from; None: refused (not set up).
        self._objects = objects
        # This replica's id owns the jobs it claims; other owners' leases say whether they live.
        self._lease = lease
        self._audit = audit
        self._upload_limit = RateLimiter("uploads", per_minute=settings.rate_limit_uploads_per_min)
        self._analytics = analytics
        self._store = store
        self._keys = keys
        self._media = media
        self._probe_video = probe_video
        self._render_annotated = render_annotated
        self._gate = UploadGate(self.uploads_dir, settings.max_concurrent_uploads, settings.upload_disk_reserve_bytes)
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
        self._sweeper: asyncio.Task[None] | None = None
        # When this replica last lost its lease (monotonic), None if never.
        self._lease_lost_at: float | None = None
        lease.on_lost(self._on_lease_lost)

    # -- lifecycle ---------------------------------------------------------------------

    async def recover(self) -> None:
        """Put what a previous process of this replica left behind in order; call before :meth:`start`.

        Its cut-off uploads go, and job directories the database does not know once untouched
        for ORPHAN_FILES_GRACE_S (another replica may be about to record its job). The running
        jobs it owned, those claimed before owners were recorded and those of replicas whose
        lease lapsed run again (or fail, past SPOTON_JOB_MAX_ATTEMPTS); a live replica's are its own.
        """
        shutil.rmtree(self.uploads_dir, ignore_errors=True)  # uploads its end cut off
        known = await self._store.ids()
        jobs_dir = self._settings.jobs_dir
        for path in jobs_dir.iterdir() if jobs_dir.is_dir() else ():
            # A process ended between accepting an upload and recording it.
            if _is_uuid(path.name) and path.name not in known:
                await asyncio.to_thread(_remove_if_untouched, path, ORPHAN_FILES_GRACE_S)
        await self._requeue_interrupted(own=True)

    async def requeue_lapsed(self) -> list[str]:
        """Run again (or fail, past SPOTON_JOB_MAX_ATTEMPTS) the running jobs of other replicas
        whose lease lapsed, and remove those replicas' cut-off uploads once untouched for
        ORPHAN_FILES_GRACE_S. Returns the ids of the jobs this replica changed: of replicas
        sweeping at the same moment, each job is changed by exactly one."""
        return await self._requeue_interrupted(own=False)

    def start(self) -> None:
        """Begin running queued jobs, and sweeping for those of replicas whose lease lapsed
        (the service calls this once its models are warm)."""
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="job-dispatcher")
        if self._sweeper is None:
            every_s = self._lease.ttl_s / SWEEPS_PER_LEASE_TTL
            self._sweeper = asyncio.create_task(self._sweep_forever(every_s), name="job-sweeper")

    async def close(self) -> None:
        """Stop the queue; running jobs stay RUNNING in the record, to be run again on restart."""
        for background in (self._dispatcher, self._sweeper):
            if background is not None:
                background.cancel()
                await asyncio.gather(background, return_exceptions=True)
        runs = list(self._running.values())
        for run in runs:
            run.shutting_down = True
            run.task.cancel()
        await asyncio.gather(*(r.task for r in runs), return_exceptions=True)

    def _on_lease_lost(self) -> None:
        """The lease lapsed: others may take this replica's jobs back, and its tasks are being
        stopped (TaskControl.stop_for_lost_lease). Stop the runs; each puts its job back in the
        queue unless another replica did first."""
        self._lease_lost_at = time.monotonic()
        for run in self._running.values():
            if not (run.ending or run.shutting_down or run.task.done()):
                run.lease_lost = True
                run.task.cancel()

    def _claiming_paused(self) -> bool:
        # For one TTL after losing its lease this replica claims nothing: by then it has renewed
        # it, or the others have seen it lapse; claimed sooner, a job would bounce between them.
        lost = self._lease_lost_at
        return lost is not None and time.monotonic() - lost < self._lease.ttl_s

    async def _sweep_forever(self, every_s: float) -> None:
        """:meth:`requeue_lapsed` every ``every_s`` until cancelled; a round that fails
        (PostgreSQL or Redis away) is logged and the next one tries again."""
        while True:
            await asyncio.sleep(every_s)
            try:
                if changed := await self.requeue_lapsed():
                    log.warning("took back %d job(s) of replicas whose lease lapsed: %s", len(changed), changed)
            except Exception as exc:
                log.warning("job sweep skipped: %s", exc)

    async def _requeue_interrupted(self, *, own: bool) -> list[str]:
        """Requeue or fail the running jobs of replicas whose lease lapsed, with ``own`` also
        this replica's and those without an owner; returns the ids changed here."""
        me = self._lease.replica_id
        lapsed: dict[str, bool] = {}  # owner -> whether its lease lapsed, asked once per owner
        changed = []
        for job, owner in await self._store.running():
            if owner == me or not owner:
                if not own:  # they run here (or, ownerless, are the start-up's to take back)
                    continue
                cause = "a restart of the inference service"
            else:
                if owner not in lapsed:
                    lapsed[owner] = not await self._lease.alive(owner)
                if not lapsed[owner]:
                    continue  # a live replica runs it
                cause = f"the loss of replica {owner}, which ran it (its lease lapsed)"
            if await self._interrupted(job.job_id, job.task_id, JobClaim(owner, job.attempts), cause):
                changed.append(job.job_id)
        await self._remove_lapsed_uploads()
        return changed

    async def _interrupted(self, job_id: str, task_id: str, claim: JobClaim, cause: str) -> bool:
        """Requeue a job whose run (under ``claim``, with task ``task_id``) ``cause`` interrupted,
        or fail it past its attempts; False when it no longer ran under ``claim`` (another
        replica took it back first)."""
        self._remove_results(job_id, task_id)
        limit, attempts = self._settings.job_max_attempts, claim.attempt
        if attempts >= limit:
            error = (
                f"interrupted by {cause} on each of its {attempts} starts "
                f"(SPOTON_JOB_MAX_ATTEMPTS={limit}); upload the video again"
            )
            running = (JobState.RUNNING,)
            done = await self._store.finish(
                job_id, JobState.FAILED, step="interrupted", error=error, from_states=running, claim=claim
            )
            if done is None:
                return False
            log.warning("job %s failed: %s", job_id, error)
        else:
            step = f"queued again: {cause} interrupted start {attempts} of {limit}"
            if not await self._store.requeue(job_id, step, claim):
                return False
            log.info("job %s %s", job_id, step)
        self._notify()
        self._wake.set()
        return True

    async def _remove_lapsed_uploads(self) -> None:
        """Cut-off uploads of replicas whose lease lapsed (a pod gone for good never restarts
        to clear its own), and files from before uploads were kept per replica."""
        root = self._settings.jobs_dir / UPLOADS
        for path in root.iterdir() if root.is_dir() else ():
            if path == self.uploads_dir or (path.is_dir() and await self._lease.alive(unquote(path.name))):
                continue
            await asyncio.to_thread(_remove_if_untouched, path, ORPHAN_FILES_GRACE_S)

    # -- requests ----------------------------------------------------------------------

    @audited(AuditAction.JOB_UPLOAD, lambda request, chunks: "job/new", lambda record: f"job/{record.job_id}")
    async def upload(self, request: UploadRequest, chunks: AsyncIterator[bytes]) -> JobRecord:
        """Receive, validate and queue an upload; refused uploads leave no file behind. A retry
        with an earlier upload's idempotency key answers its job without reading ``chunks``, and
        so does a request with an ``s3://`` source (the object is fetched instead)."""
        if scope() is not None:
            # Its environment is the job's own, which a credential limited to some cannot see.
            raise PermissionDenied(
                "an upload makes an environment of its own, outside the environments this credential is "
                "limited to; upload with a credential that is not limited to environments"
            )
        source = _object_source(request.source) if request.source else None
        if source is not None and not request.filename.strip():
            # Shown as where it came from; a URI too long for a name falls back to the object's own name.
            shown = source.uri if len(source.uri) <= MAX_NAME_CHARS else source.prefix.rsplit("/", 1)[-1]
            request = dataclasses.replace(request, filename=shown[:MAX_NAME_CHARS])
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
        part = self.uploads_dir / f"{job_id}.part"
        job_dir = self._job_dir(job_id)
        try:
            if source is not None:
                size = await self._fetch(source, part)
            else:
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

    async def _fetch(self, source: BucketSource, part: Path) -> int:
        """Fetch the object ``source`` names to ``part`` within the upload limits; its size."""
        if self._objects is None:
            raise FailedPrecondition(f"{source.uri}: this server is not set up to read from object storage")
        obj = await self._objects.head(source.bucket, source.prefix)
        limit = self._settings.job_max_upload_bytes
        if obj.size > limit:
            raise ResourceExhausted(
                f"{obj.uri} is {obj.size} bytes, over the limit of {limit} bytes (SPOTON_JOB_MAX_UPLOAD_BYTES)"
            )
        # Counted against the uploads' slots and disk reserve: it lands where uploads do.
        with self._gate.admit(obj.size):
            await self._objects.download(obj, part, None)
        log.info("job source %s fetched (%d bytes)", obj.uri, obj.size)
        return obj.size

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
            return await self._cancel_elsewhere(job_id)
        if run.ending:
            raise FailedPrecondition(f"job {job_id} is already finishing; it can no longer be cancelled")
        run.task.cancel()
        await asyncio.wait({run.task}, timeout=CANCEL_WAIT_S)
        return await self.get(job_id)

    async def _cancel_elsewhere(self, job_id: str) -> JobRecord:
        """Cancel a job another replica runs, through its task: the control reaches that replica
        (TaskControl passes it on through Redis), whose run then ends the job CANCELLED."""
        job = await self.get(job_id)
        # Only while processing is the recorded task this attempt's, and still running.
        if job.state is not JobState.RUNNING or job.step != "processing":
            raise FailedPrecondition(
                f"job {job_id} is {job.step or job.state.value} on another replica; a cancel from here "
                "reaches it while it is processing: retry in a moment"
            )
        try:
            await self._tasks.control(job.task_id, TaskAction.CANCEL)
        except (FailedPrecondition, NotFound) as exc:  # its task ended meanwhile: rendering, or done
            raise FailedPrecondition(f"job {job_id} is already finishing; it can no longer be cancelled") from exc
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT_S):
                async for _ in self.watch(job_id, job.revision):  # ends once the job is final
                    pass
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
                while (
                    not triton_was_down
                    and not self._claiming_paused()
                    and len(self._running) < self._settings.job_concurrency
                ):
                    job = await self._store.claim_next(self._lease.replica_id)
                    if job is None:
                        break
                    run = self._running[job.job_id] = _Running()
                    run.claim = JobClaim(self._lease.replica_id, job.attempts)
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
                if run.lease_lost:
                    run.ending = True
                    cause = f"the loss of the lease of replica {run.claim.owner}, which ran it"
                    await self._interrupted(job_id, run.task_id, run.claim, cause)
                elif not run.shutting_down:
                    run.ending = True
                    self._remove_results(job_id, run.task_id)
                    await self._finish(run, job_id, JobState.CANCELLED)
                raise
            except _TaskCancelled as exc:
                run.ending = True
                self._remove_results(job_id, run.task_id)
                await self._finish(run, job_id, JobState.CANCELLED, str(exc))
            except _ClaimLost as exc:
                # The job is another run's now: stop this one's work, leave the job alone.
                run.ending = True
                log.warning("job %s: %s", job_id, exc)
                await self._stop(run, cancel_task=True)
            except Exception as exc:
                run.ending = True
                log.exception("job %s failed", job_id)
                await self._stop(run, cancel_task=True)
                self._remove_results(job_id, run.task_id)
                await self._finish(run, job_id, JobState.FAILED, str(exc) or type(exc).__name__)
            else:
                run.ending = True
                await self._finish(run, job_id, JobState.COMPLETED, results=results)
        finally:
            self._running.pop(job_id, None)
            self._wake.set()

    async def _process(self, job: JobRecord, run: _Running) -> tuple[JobResult, ...]:
        job_id = job.job_id
        await self._report(run, job_id, "preparing", Snapshot(0.0, None), job.total_frames)
        if not self._job_dir(job_id).is_dir():
            raise FileNotFoundError(
                f"the job's files are not under {self._settings.jobs_dir}: the replica that took the upload "
                "keeps them elsewhere; replicas sharing a database must share SPOTON_JOBS_DIR"
            )
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
        await self._report(run, job_id, "processing", snapshot, task.total_frames, task.task_id)
        while not task.state.is_final:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            try:
                task = await self._tasks.get(task.task_id)
                snapshot = progress.processing(task.frames_processed, task.updated_at.timestamp())
                await self._report(run, job_id, "processing", snapshot, task.total_frames)
            except Unavailable as exc:  # PostgreSQL away: the task goes on, and so does the job
                log.debug("job %s: progress not read or reported (%s); retrying", job_id, exc)
        if task.state is TaskState.CANCELLED:
            raise _TaskCancelled(f"its task {task.task_id} was cancelled (ControlTask)")
        if task.state is TaskState.FAILED:
            raise RuntimeError(f"processing failed: {task.error}")
        snapshot = progress.processing_done(task.frames_processed, task.updated_at.timestamp())
        await self._report(run, job_id, "processing", snapshot, task.total_frames)
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
            rendering = progress.rendering(frames, loop.time())
            await self._report(run, job_id, "rendering", rendering, progress.total_frames)
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

    async def _report(
        self, run: _Running, job_id: str, step: str, snapshot: Snapshot, total: int, task_id: str = ""
    ) -> None:
        """_ClaimLost when the job no longer runs under ``run``'s claim."""
        reported = await self._store.report(
            job_id, step=step, snapshot=snapshot, total_frames=total, task_id=task_id, claim=run.claim
        )
        if not reported:
            raise _ClaimLost(
                f"it no longer runs as start {run.claim.attempt} on replica {run.claim.owner} (the replica's "
                "lease lapsed and another took the job back); stopping this run"
            )
        self._notify()

    async def _finish(
        self, run: _Running, job_id: str, state: JobState, error: str = "", results: tuple[JobResult, ...] = ()
    ) -> None:
        done = await self._store.finish(job_id, state, step=state.value, error=error, results=results, claim=run.claim)
        self._notify()
        if done is None:
            log.warning("job %s ended %s here, but another replica had taken it back: left to that one", job_id, state)
        else:
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
    def uploads_dir(self) -> Path:
        """Where this replica's uploads stream to: one directory per replica, so a restart
        clears only its own cut-off uploads."""
        return self._settings.jobs_dir / UPLOADS / _dir_name(self._lease.replica_id)

    def _job_dir(self, job_id: str) -> Path:
        return self._settings.jobs_dir / job_id

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


def _object_source(uri: str) -> BucketSource:
    """``s3://bucket/key`` as a BucketSource whose prefix is the key; InvalidArgument otherwise."""
    source = parse_bucket_uri(uri)
    if not source.prefix:
        raise InvalidArgument(f"source {source.uri!r} names a bucket only: name the video, s3://bucket/key")
    return source


def _dir_name(replica: str) -> str:
    """A replica id as one safe path component that ``unquote`` turns back into the id (no
    '/', and no '.' so never '.' or '..')."""
    return quote(replica, safe="").replace(".", "%2E")


def _is_uuid(name: str) -> bool:
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def _remove_if_untouched(path: Path, grace_s: float) -> None:
    """Remove ``path`` (a file or a tree) unless it or anything in it changed within ``grace_s``."""
    cutoff = time.time() - grace_s
    try:
        newest = path.stat().st_mtime
        for parent, _, files in os.walk(path):
            for name in (parent, *(os.path.join(parent, f) for f in files)):
                newest = max(newest, os.stat(name).st_mtime)
    except FileNotFoundError:
        return  # removed meanwhile (by its job's delete, or another replica)
    if newest >= cutoff:
        return
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _environment_id(job_id: str) -> str:
    return f"job-{job_id}"


def _export(exports: dict[str, Path], task_id: str, name: str) -> Path:
    if name not in exports:
        raise NotFound(f"task {task_id} has no export {name!r}")
    return exports[name]
