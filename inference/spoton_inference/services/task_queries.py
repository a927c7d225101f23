"""Reading tasks: a record, a page of records, the unfinished ones, and what Redis says of a task.

Records come from PostgreSQL, so any replica answers for any task; only those of environments
the caller may see are told of. Redis adds the live part (newest event, focus, owner); while it
is unreachable those answers fall back to "nothing" rather than failing the read.
"""

from __future__ import annotations

import asyncio

from spoton_inference.domain.errors import NotFound
from spoton_inference.domain.events import TaskState
from spoton_inference.domain.scoping import scope, visible
from spoton_inference.domain.tasks import TaskRecord
from spoton_inference.services.request_args import decode_token, encode_token, parse_uuid
from spoton_inference.services.task_ports import ErrorTypes, EventLog, EventPublisher, TaskRecords

MAX_PAGE_SIZE = 200
UNFINISHED = tuple(s for s in TaskState if not s.is_final)


class TaskQueries:
    def __init__(
        self,
        records: TaskRecords,
        events: EventLog,
        outbox: EventPublisher,
        *,
        redis_timeout_s: float,
        unreachable: ErrorTypes,
    ) -> None:
        self._records = records
        self._events = events
        self._outbox = outbox
        # SPOTON_REDIS_TIMEOUT_S: how long a read waits for a frozen Redis.
        self._redis_timeout_s = redis_timeout_s
        self._unreachable = unreachable

    async def get(self, task_id: str) -> TaskRecord:
        record = await self._records.get_task(parse_uuid(task_id, "task id"))
        if record is None or not visible(record.environment_id):
            raise NotFound(f"task {task_id!r} not found")
        return record

    async def list(
        self, *, page_size: int, page_token: str, environment_id: str, state: TaskState | None
    ) -> tuple[list[TaskRecord], str]:
        """A page of tasks, newest first, and the token of the next page ('' at the end); only
        those of environments the caller may see."""
        size = min(max(page_size or 50, 1), MAX_PAGE_SIZE)
        before = decode_token(page_token) if page_token else None
        if environment_id and not visible(environment_id):
            return [], ""  # as for an environment with no tasks: nothing is told of it
        rows = await self._records.list_tasks(
            limit=size + 1, before=before, environment_id=environment_id, state=state, environment_ids=scope()
        )
        more = len(rows) > size
        rows = rows[:size]
        token = encode_token(rows[-1].created_at, rows[-1].task_id) if more else ""
        return rows, token

    async def unfinished(self, environment_id: str) -> list[TaskRecord]:
        """Tasks over ``environment_id`` that have not ended, from the record (any replica)."""
        found: list[TaskRecord] = []
        for state in UNFINISHED:
            found += await self._records.list_tasks(limit=MAX_PAGE_SIZE, environment_id=environment_id, state=state)
        return found

    async def all_unfinished(self) -> list[TaskRecord]:
        """Every task that has not ended, over any environment (unscoped: for recovery)."""
        found: list[TaskRecord] = []
        for state in UNFINISHED:
            before = None
            while True:
                rows = await self._records.list_tasks(limit=MAX_PAGE_SIZE, before=before, state=state)
                found += rows
                if len(rows) < MAX_PAGE_SIZE:
                    break
                before = (rows[-1].created_at, rows[-1].task_id)
        return found

    async def last_sequence(self, task_id: str) -> int:
        """The newest event's sequence; 0 while Redis is unreachable or frozen (the record answers
        alone, within SPOTON_REDIS_TIMEOUT_S)."""
        if self._outbox.holding:  # Redis known to be away: do not wait on it again
            return 0
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                return await self._events.last_sequence(task_id)
        except self._unreachable:
            return 0

    async def focus(self, task_id: str) -> int:
        """The global person id the task is focused on; 0 for none, and while Redis is unreachable."""
        if self._outbox.holding:
            return 0
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                return int((await self._events.get_live_state(task_id)).get("focus_global_id", 0))
        except self._unreachable:
            return 0

    async def owner(self, task_id: str) -> str:
        """The replica that runs (or ran) the task, from its live state; "" if none is recorded."""
        return (await self._events.get_live_state(task_id)).get("replica", "")

    async def owner_if_reachable(self, task_id: str) -> str:
        """:meth:`owner`, or "" while Redis is unreachable."""
        try:
            return await self.owner(task_id)
        except self._unreachable:
            return ""
