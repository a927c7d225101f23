"""A watch stream (WatchTask or WatchJob) as ``text/event-stream``.

Each ``TaskEvent`` of WatchTask becomes one SSE block (WatchJob's ``Job`` messages are rendered
by ``routes/jobs.py``, with the job's revision as the ``id``)::

    id: <sequence>
    event: <status_update|media_available|tracking_update|tracks_refined|batch_processing_complete|...>
    data: <payload JSON, plus sequence, task_id and emitted_at>

``id`` lets a browser's ``EventSource`` resume with ``Last-Event-ID``. Every browser following
one task shares one WatchTask call (see ``sse_hub``); WatchJob streams have a call each. While
nothing changes a ``: heartbeat`` comment keeps proxies from closing the connection. A gRPC error after the
stream has started becomes an ``event: problem`` block (RFC 9457 JSON) and ends the stream, so
the browser reconnects and resumes; an error before the first event is raised instead, so the
client gets a real HTTP status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Protocol

import grpc
import msgspec
from litestar.params import HeaderParameter

from spoton.v1 import tasks_pb2
from spoton_facade.contract import SEQUENCE_MAX, optional_integer
from spoton_facade.convert import message_to_json, timestamp_to_json
from spoton_facade.problems import Problem, problem_for_rpc

HEARTBEAT = b": heartbeat\n\n"
# How long an events request waits for its Watch call to fail or deliver before committing
# to a 200 stream; failures within it get a real HTTP status instead of an in-stream problem.
# Never a refusal in itself: a call still silent after it streams anyway (heartbeats, then its
# events). Under load the refusals were the service's own UNAVAILABLE answers arriving within it
# (its PostgreSQL pool queued behind every watcher's per-event lookup); now a task's browsers
# share one call, joiners are checked with GetTask, and the service shares that lookup.
PREFLIGHT_S = 1.0
# Events of a followed task kept in memory for its browsers (SPOTON_SSE_REPLAY_EVENTS).
DEFAULT_REPLAY_EVENTS = 1024
PROBLEM_EVENT = "problem"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_encode = msgspec.json.Encoder().encode

# What EventSource sends on reconnecting: the last ``id`` it received (a task event's sequence,
# a job's revision); the stream resumes after it.
LastEventIdHeader = Annotated[
    int | None,
    HeaderParameter(
        name="Last-Event-ID",
        ge=0,
        le=SEQUENCE_MAX,
        schema_extra=optional_integer(0, SEQUENCE_MAX),
        description="Resume after this event id (`id:` of the last event received)",
    ),
]


def format_event(event: tasks_pb2.TaskEvent) -> bytes:
    """One SSE block for ``event``; its ``data`` is the payload's JSON (see ``convert``)."""
    kind = event.WhichOneof("payload")
    if kind is None:
        # An id-only block dispatches nothing but still advances the browser's Last-Event-ID.
        return b"id: %d\n\n" % event.sequence
    data: dict[str, Any] = {
        "sequence": event.sequence,
        "task_id": event.task_id,
        "emitted_at": timestamp_to_json(event, "emitted_at"),
    }
    data.update(message_to_json(getattr(event, kind)))
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.sequence, kind.encode(), _encode(data))


class BlockCache:
    """Rendered blocks shared by every subscriber of a task, so each event is rendered once.

    Sequence numbers are per task and immutable, so ``(task_id, sequence)`` names one event;
    ``emitted_at`` joins the key so a reused task id cannot serve a stale block. Bounded, oldest
    out first: subscribers far behind the others just render again.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._blocks: dict[tuple[str, int, int, int], bytes] = {}

    def block(self, event: tasks_pb2.TaskEvent) -> bytes:
        """``format_event(event)``, from the cache when another subscriber already rendered it."""
        stamp = event.emitted_at
        key = (event.task_id, event.sequence, stamp.seconds, stamp.nanos)
        block = self._blocks.get(key)
        if block is None:
            block = format_event(event)
            if len(self._blocks) >= self._size:
                del self._blocks[next(iter(self._blocks))]
            self._blocks[key] = block
        return block


def format_problem(problem: Problem) -> bytes:
    """An ``event: problem`` block; it has no ``id`` so resuming starts after the last event."""
    return b"event: %s\ndata: %s\n\n" % (PROBLEM_EVENT.encode(), _encode(problem))


class Blocks(Protocol):
    """Renders one streamed message as an SSE block (:class:`BlockCache` for task events)."""

    def block(self, event: Any) -> bytes: ...


class WatchCall(Protocol):
    """The parts of a ``grpc.aio`` WatchTask or WatchJob call that :class:`TaskEventStream` uses."""

    async def read(self) -> Any: ...

    async def initial_metadata(self) -> Any: ...

    def cancel(self) -> bool: ...

    def done(self) -> bool: ...


class Until(Protocol):
    """Asked after each message a stream sent: ``True`` ends the stream there (a hand-over)."""

    def __call__(self, message: Any) -> bool: ...


class TaskEventStream:
    """Owns one WatchTask or WatchJob call and yields it as SSE bytes.

    The call is cancelled as soon as the stream ends, fails, is drained, is cancelled (the
    client went away), ``until`` says so, or :meth:`aclose` is called, whichever comes first;
    :meth:`aclose` also covers a stream that was never iterated.
    """

    def __init__(
        self,
        call: WatchCall,
        blocks: Blocks,
        heartbeat_s: float,
        draining: asyncio.Event,
        instance: str,
        until: Until | None = None,
    ) -> None:
        self._call = call
        self._blocks = blocks
        self._heartbeat_s = heartbeat_s
        self._draining = draining
        self._until = until
        # The request path, reported in problem events.
        self.instance = instance
        self._read: asyncio.Future[Any] | None = None
        self._headers: asyncio.Future[Any] | None = None
        self._drained: asyncio.Future[Any] | None = None

    async def preflight(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the call to either send something or fail.

        Returns ``False`` when the call ended without any event (the task or job is over and
        nothing follows the resume point). Raises the call's ``AioRpcError`` when it failed before its
        first event. The wait ends early when the service sends its response headers.
        """
        try:
            self._read = observed(self._call.read())
            self._headers = observed(self._call.initial_metadata())
            await asyncio.wait(
                {self._read, self._headers},
                timeout=timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if self._headers.done() and self._call.done():
                # A trailers-only response: the status came with the headers, the read follows.
                await asyncio.wait({self._read})
            if self._read.done() and self._read.result() is grpc.aio.EOF:
                self.close()
                return False
        except BaseException:
            self.close()
            raise
        return True

    async def next_message(self) -> Any:
        """The call's next message, ``grpc.aio.EOF`` at its end; raises its ``AioRpcError``.

        For a reader of its own (the shared upstream of ``sse_hub``) instead of iterating.
        """
        read, self._read = self._read or observed(self._call.read()), None
        return await read

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        self._drained = observed(self._draining.wait())
        try:
            while True:
                if self._read is None:
                    self._read = observed(self._call.read())
                done, _ = await asyncio.wait(
                    {self._read, self._drained}, timeout=self._heartbeat_s, return_when=asyncio.FIRST_COMPLETED
                )
                if self._read not in done:
                    if self._drained in done:
                        return  # shutting down: the browser reconnects (elsewhere) and resumes
                    yield HEARTBEAT
                    continue
                read, self._read = self._read, None
                try:
                    event = read.result()
                except grpc.aio.AioRpcError as exc:
                    yield format_problem(problem_for_rpc(exc.code(), exc.details(), self.instance))
                    return
                if event is grpc.aio.EOF:
                    return
                yield self._blocks.block(event)
                if self._until is not None and self._until(event):
                    return
        finally:
            # No await here: a cancelled anyio scope would cancel it again before it ran.
            self.close()

    def close(self) -> None:
        """Cancel the call and any read still in flight; safe to call more than once."""
        self._call.cancel()
        for pending in (self._read, self._headers, self._drained):
            if pending is not None:
                pending.cancel()

    async def aclose(self) -> None:
        """:meth:`close`, as a coroutine for response background tasks."""
        self.close()


class EventStreams:
    """What all SSE subscribers share: rendered blocks, the heartbeat, the shutdown signal and
    the task streams' hub (``tasks``: one upstream call per followed task)."""

    def __init__(self, heartbeat_s: float, replay_events: int = DEFAULT_REPLAY_EVENTS) -> None:
        # sse_hub builds on this module's streams, so it is imported here, not at the top.
        from spoton_facade.sse_hub import TaskHub

        self.blocks = BlockCache()
        self.heartbeat_s = heartbeat_s
        self._draining = asyncio.Event()
        self.tasks = TaskHub(self, replay_events)

    @property
    def draining(self) -> asyncio.Event:
        return self._draining

    def open(
        self, call: WatchCall, instance: str, blocks: Blocks | None = None, until: Until | None = None
    ) -> TaskEventStream:
        """A stream over ``call`` for the request at path ``instance``; ``blocks`` renders its
        messages (default: task events, cached across subscribers); ``until`` may end it early."""
        return TaskEventStream(call, blocks or self.blocks, self.heartbeat_s, self._draining, instance, until)

    def drain(self) -> None:
        """End every stream, open or yet to open: the server is shutting down.

        Without this a server waits for SSE responses that never finish on their own.
        """
        self._draining.set()
        self.tasks.drain()


def observed(awaitable: Any) -> asyncio.Future[Any]:
    """``awaitable`` as a task whose failure, once nobody cares, is not logged as unretrieved."""
    task = asyncio.ensure_future(awaitable)
    # A read that fails after the stream stopped caring must not log "exception never retrieved".
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task
