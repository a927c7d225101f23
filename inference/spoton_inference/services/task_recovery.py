"""After a restart: the tasks a dead process left unfinished are failed, visibly, with a reason.

A task cannot resume mid-frame. Those failed are this replica's own (it was restarted) and
those of replicas whose lease lapsed; tasks of live replicas are theirs. Their MOT exports are
first rewritten from the stored track points, so files and table say the same.
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
        reason = "interrupted by a restart of the inference service; start the task again"
        me = self._lease.replica_id
        young = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self._lease.ttl_s)
        orphans = []
        for record in await self._queries.all_unfinished():
            owner = await self._queries.owner(record.task_id)
            if owner == me or (not await self._lease.alive(owner) if owner else record.created_at < young):
                orphans.append(record)
        if orphans:
            await self._rebuild_exports(orphans)
        for task_id in await self._records.fail_unfinished_tasks(reason, [r.task_id for r in orphans]):
            await self._outbox.append(task_id, StatusUpdate(TaskState.FAILED, 0.0, "interrupted", reason))

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
