"""The tasks a dead process left unfinished are failed, visibly, with a reason.

A task cannot resume mid-frame. At start-up, those failed are this replica's own (it was
restarted) and those of replicas whose lease lapsed; tasks of live replicas are theirs. While it
runs, each replica also fails over the tasks of replicas whose lease lapsed since (a pod that is
gone for good never restarts under its name). Their MOT exports are first rewritten from the
stored track points, so files and table say the same. Failing is one conditional UPDATE, so when
several replicas sweep at once each task is failed, and its event sent, by exactly one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from spoton_inference.domain.events import StatusUpdate, TaskState
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.services.task_exports import ExportFiles
from spoton_inference.services.task_ports import EventPublisher, Lease, TaskRecords
from spoton_inference.services.task_queries import TaskQueries

log = logging.getLogger(__name__)
# How long recovery waits for the track-point journal of a dead process to be replayed.
RECOVER_DRAIN_S = 30.0
# A running replica looks for tasks of replicas whose lease lapsed this many times per lease
# time to live (SPOTON_REPLICA_LEASE_TTL_S, 120 s: every 30 s, so a dead replica's tasks fail
# within about 150 s of its last renewal).
SWEEPS_PER_TTL = 4
RESTART_REASON = "interrupted by a restart of the inference service; start the task again"

# Rewrites a task's MOT exports in a directory from its stored track points (for its cameras);
# returns how many points were written (pipeline/exports.py rewrite_mot). Blocking: run in a thread.
RewriteExports = Callable[[Path, Sequence[str], Sequence[Any]], int]


class TaskRecovery:
    def __init__(
        self,
        records: TaskRecords,
        queries: TaskQueries,
        outbox: EventPublisher,
        lease: Lease,
        files: ExportFiles,
        *,
        drain_track_points: Callable[[], Awaitable[None]],
        rewrite_exports: RewriteExports,
    ) -> None:
        self._records = records
        self._queries = queries
        self._outbox = outbox
        self._lease = lease
        self._files = files
        # Waits until the track-point writer has replayed its journal (storage/track_writer.py).
        self._drain = drain_track_points
        self._rewrite = rewrite_exports

    async def recover(self) -> None:
        """Tasks a dead process left unfinished cannot resume mid-frame: fail them, visibly.

        Those are this replica's own (it was restarted) and those of replicas whose lease
        lapsed; tasks of live replicas are theirs. A task without an owner yet is left alone
        while it is young: its replica may be writing the owner right now.
        """
        me = self._lease.replica_id
        young = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self._lease.ttl_s)
        orphans = []
        for record in await self._queries.all_unfinished():
            owner = await self._queries.owner(record.task_id)
            if owner == me or (not await self._lease.alive(owner) if owner else record.created_at < young):
                orphans.append(record)
        await self._fail(orphans, RESTART_REASON)

    async def fail_over(self) -> list[str]:
        """Fail the unfinished tasks of other replicas whose lease lapsed; returns the ids this
        replica failed (another sweeping at the same moment fails the rest)."""
        me = self._lease.replica_id
        by_owner: dict[str, list[TaskRecord]] = {}
        for record in await self._queries.all_unfinished():
            owner = await self._queries.owner(record.task_id)
            if owner and owner != me and not await self._lease.alive(owner):
                by_owner.setdefault(owner, []).append(record)
        failed: list[str] = []
        for owner, records in by_owner.items():
            reason = f"replica {owner}, which ran it, stopped (its lease lapsed); start the task again"
            failed += await self._fail(records, reason)
        return failed

    async def fail_over_forever(self, every_s: float | None = None) -> None:
        """:meth:`fail_over` every ``every_s`` (by default a quarter of the lease's time to live)
        until cancelled; a round that fails (PostgreSQL or Redis away) is logged and the next
        one tries again."""
        if every_s is None:
            every_s = self._lease.ttl_s / SWEEPS_PER_TTL
        while True:
            await asyncio.sleep(every_s)
            try:
                if failed := await self.fail_over():
                    log.warning("failed over %d task(s) of replicas whose lease lapsed: %s", len(failed), failed)
            except Exception as exc:
                log.warning("fail-over round skipped: %s", exc)

    async def _fail(self, records: list[TaskRecord], reason: str) -> list[str]:
        if not records:
            return []
        await self._rebuild_exports(records)
        failed = await self._records.fail_unfinished_tasks(reason, [r.task_id for r in records])
        for task_id in failed:
            await self._outbox.append(task_id, StatusUpdate(TaskState.FAILED, 0.0, "interrupted", reason))
        return failed

    async def _rebuild_exports(self, records: list[TaskRecord]) -> None:
        """The MOT exports of tasks a dead process left, rewritten from their stored track points.

        It died with export lines and track points in its buffers, so the files and the table
        disagree. The table, once the writer has replayed that process's journal, is what was
        kept; the exports (those under this media root) are made to say the same.
        """
        try:
            async with asyncio.timeout(RECOVER_DRAIN_S):
                await self._drain()
        except TimeoutError:
            log.warning(
                "the track-point journal was not replayed within %g s; exports rebuilt without it", RECOVER_DRAIN_S
            )
        for record in records:
            directory = self._files.directory(record.task_id)
            if not directory.is_dir():
                continue
            points = await self._records.task_track_points(record.task_id)
            written = await asyncio.to_thread(self._rewrite, directory, record.camera_ids, points)
            log.info(
                "task %s was interrupted: its exports now hold its %d stored track points", record.task_id, written
            )
