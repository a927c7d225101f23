"""Jobs across replicas sharing one PostgreSQL and one jobs directory: a replica starting up
takes back only its own running jobs and those of replicas whose lease lapsed, sweeping replicas
requeue a lapsed replica's job exactly once, and a replica that lost its claim writes nothing.

Real PostgreSQL; the leases are the port's (services/task_ports.Lease), answered from a set of
live replica ids, as the Redis keys of storage/replicas.ReplicaLease would answer. End to end,
with real leases and Triton: test_jobs_across_replicas.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from spoton_inference.domain.job_progress import Snapshot
from spoton_inference.domain.job_types import JobOptions, JobRecord, JobState, NewJob, VideoInfo
from spoton_inference.services.jobs import ORPHAN_FILES_GRACE_S, JobClaim, JobManager
from spoton_inference.storage.job_store import JobStore
from spoton_inference.storage.postgres import Database

from .services import services

pytestmark = pytest.mark.timeout(120)

VIDEO = VideoInfo("mp4", "h264", 640, 480, 10.0, 3.0, 30)
MAX_ATTEMPTS = 2


@dataclasses.dataclass
class Leases:
    """The replicas holding a lease (ids); the others' leases lapsed."""

    live: set[str]


@dataclasses.dataclass
class FakeLease:
    """One replica's view of the leases (services/task_ports.Lease)."""

    replica_id: str
    leases: Leases
    ttl_s: float = 120.0

    async def alive(self, replica: str) -> bool:
        return replica in self.leases.live

    def on_lost(self, callback: Callable[[], object]) -> None:
        pass  # never lost here


@pytest.fixture
async def store(db: Database) -> JobStore:
    """The jobs table, emptied: each test sees only its own jobs in the queue."""
    async with db.pool.acquire() as conn:
        await conn.execute("DELETE FROM jobs")
    return JobStore(db)


@pytest.fixture
def jobs_dir(make_data_dir) -> Path:
    return make_data_dir("shared-jobs")


@pytest.fixture
def replica(db: Database, jobs_dir: Path, make_data_dir) -> Callable[[str, Leases], JobManager]:
    """``replica(replica_id, leases)``: the job service of one replica over the shared database
    and jobs directory (each with a data directory of its own)."""

    def make(replica_id: str, leases: Leases) -> JobManager:
        data_dir = make_data_dir(replica_id)
        lease = FakeLease(replica_id, leases)
        return services(db, data_dir, lease=lease, jobs_dir=jobs_dir, job_max_attempts=MAX_ATTEMPTS).jobs

    return make


async def _running(store: JobStore, jobs_dir: Path, owner: str, starts: int = 1) -> JobRecord:
    """A job uploaded (its directory in ``jobs_dir``) and running on ``owner`` at start ``starts``."""
    job_id = str(uuid.uuid4())
    (jobs_dir / job_id / "cameras" / "camera").mkdir(parents=True)
    (jobs_dir / job_id / "environment.json").write_text("{}")
    await store.insert(NewJob(job_id, "job", "a.mp4", 1, VIDEO, JobOptions(), f"job-{job_id}", "camera"))
    for start in range(1, starts + 1):
        claimed = await store.claim_next(owner)
        assert claimed is not None and claimed.job_id == job_id
        if start < starts:
            assert await store.requeue(job_id, "interrupted", JobClaim(owner, start))
    return claimed


def _age(path: Path, seconds: float) -> None:
    """Make ``path`` and everything in it last changed ``seconds`` ago."""
    then = time.time() - seconds
    for parent, _, files in os.walk(path, topdown=False):
        for name in files:
            os.utime(os.path.join(parent, name), (then, then))
        os.utime(parent, (then, then))
    os.utime(path, (then, then))


async def _owner(store: JobStore, job_id: str) -> str:
    return dict((job.job_id, owner) for job, owner in await store.running())[job_id]


async def test_recover_takes_back_only_its_own_and_lapsed_replicas_jobs_and_files(store, jobs_dir, replica):
    leases = Leases(live={"replica-a", "replica-b"})
    other_live = await _running(store, jobs_dir, "replica-a")
    own = await _running(store, jobs_dir, "replica-b")
    lapsed = await _running(store, jobs_dir, "replica-gone")
    ownerless = await _running(store, jobs_dir, "")  # claimed before owners were recorded
    b = replica("replica-b", leases)
    a_upload = jobs_dir / "uploads" / "replica-a" / "streaming.part"
    # An unrecorded job directory may be another replica's upload about to be recorded...
    young_unknown = jobs_dir / str(uuid.uuid4())
    # ... or, untouched past the grace period, what a process left when it ended mid-upload.
    old_unknown = jobs_dir / str(uuid.uuid4())
    gone_upload = jobs_dir / "uploads" / "replica-gone" / "cut-off.part"
    for path in (a_upload, b.uploads_dir / "cut-off.part", gone_upload, young_unknown / "environment.json"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    (old_unknown / "cameras").mkdir(parents=True)
    (old_unknown / "environment.json").write_text("{}")
    _age(old_unknown, ORPHAN_FILES_GRACE_S + 60)
    _age(gone_upload.parent, ORPHAN_FILES_GRACE_S + 60)

    await b.recover()

    # The live replica's running job, and the upload it is receiving, are untouched.
    untouched = await store.get(other_live.job_id)
    assert untouched is not None
    assert (untouched.state, untouched.revision, untouched.attempts) == (JobState.RUNNING, other_live.revision, 1)
    assert await _owner(store, other_live.job_id) == "replica-a"
    assert a_upload.read_bytes() == b"partial"
    # Its own, the lapsed replica's and the ownerless job are queued again, saying why.
    for job, cause in ((own, "restart"), (lapsed, "replica-gone"), (ownerless, "restart")):
        again = await store.get(job.job_id)
        assert again is not None and again.state is JobState.QUEUED and again.attempts == 1
        assert cause in again.step and "start 1 of 2" in again.step
    # Its own cut-off uploads and the lapsed replica's stale ones are gone; known job files stay.
    assert not list(b.uploads_dir.glob("*")) and not gone_upload.parent.exists()
    assert young_unknown.is_dir() and not old_unknown.exists()
    assert all((jobs_dir / job.job_id / "environment.json").is_file() for job in (other_live, own, lapsed))


async def test_a_replica_sweeping_fails_a_lapsed_replicas_job_past_its_attempts(store, jobs_dir, replica):
    spent = await _running(store, jobs_dir, "replica-gone", starts=MAX_ATTEMPTS)
    b = replica("replica-b", Leases(live={"replica-b"}))
    assert await b.requeue_lapsed() == [spent.job_id]
    failed = await store.get(spent.job_id)
    assert failed is not None and failed.state is JobState.FAILED
    assert "replica-gone" in failed.error and f"SPOTON_JOB_MAX_ATTEMPTS={MAX_ATTEMPTS}" in failed.error


async def test_a_lapsed_replicas_jobs_are_taken_back_once_when_two_replicas_sweep_at_once(store, jobs_dir, replica):
    leases = Leases(live={"replica-a", "replica-b", "replica-c", "replica-gone"})
    lapsed = [await _running(store, jobs_dir, "replica-gone") for _ in range(8)]
    spent = await _running(store, jobs_dir, "replica-gone", starts=MAX_ATTEMPTS)
    live = await _running(store, jobs_dir, "replica-a")
    own = await _running(store, jobs_dir, "replica-b")  # b runs it: its sweep leaves it alone
    b, c = replica("replica-b", leases), replica("replica-c", leases)
    # A bare sweep has nothing to do while every owner is live.
    assert await b.requeue_lapsed() == []

    leases.live.discard("replica-gone")
    by_b, by_c = await asyncio.gather(b.requeue_lapsed(), c.requeue_lapsed())

    expected = {job.job_id for job in [*lapsed, spent]}
    assert sorted(by_b + by_c) == sorted(expected)  # each by exactly one of them
    for job in [*lapsed, spent]:
        after = await store.get(job.job_id)
        assert after is not None and after.revision == job.revision + 1  # written once
        assert after.state is (JobState.FAILED if job is spent else JobState.QUEUED)
    for job in (live, own):
        after = await store.get(job.job_id)
        assert after is not None and (after.state, after.revision) == (JobState.RUNNING, job.revision)
    assert await asyncio.gather(b.requeue_lapsed(), c.requeue_lapsed()) == [[], []]


async def test_a_replica_that_lost_its_claim_writes_nothing_more_to_the_job(store, jobs_dir):
    job = await _running(store, jobs_dir, "replica-a")
    stale = JobClaim("replica-a", 1)
    # Replica a's lease lapsed: b took the job back, and claimed it again itself.
    assert await store.requeue(job.job_id, "queued again", stale)
    again = await store.claim_next("replica-b")
    assert again is not None and again.job_id == job.job_id and again.attempts == 2
    # What a's run still sends changes nothing: not its progress, its end, nor a requeue.
    half = Snapshot(0.5, 3.0)
    assert not await store.report(job.job_id, step="processing", snapshot=half, total_frames=30, claim=stale)
    assert await store.finish(job.job_id, JobState.COMPLETED, step="completed", claim=stale) is None
    assert not await store.requeue(job.job_id, "queued again", stale)
    now = await store.get(job.job_id)
    assert now is not None and (now.state, now.revision, now.progress) == (JobState.RUNNING, again.revision, 0.0)
    assert await _owner(store, job.job_id) == "replica-b"
    # b's own run writes as before.
    mine = JobClaim("replica-b", 2)
    assert await store.report(job.job_id, step="processing", snapshot=half, total_frames=30, claim=mine)
