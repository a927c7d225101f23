"""One WatchTask call per followed task, shared by every SSE subscriber of it in this process.

A browser that opens ``/processing-tasks/{id}/events`` joins the task's :class:`Upstream` when
one is open and its resume point lies within the upstream's recent events (its :class:`Ring`):
it is served from memory, once the service has checked this browser's own credential and scope
with GetTask. Otherwise it opens a WatchTask call of its own from its resume point, so the
service replays what the ring no longer holds or answers 404, 410 or 204 as before. That call
becomes the task's upstream when there is none; else it is a *catch-up* that hands over to the
upstream as soon as it reaches the ring, and is cancelled.

Each subscriber's buffer is its position in the ring: the blocks between it and the newest
event, at most the ring's size. The pump that reads the upstream never waits for a subscriber,
so a slow browser cannot slow the others; one that falls out of the ring is cut off: its
stream ends after what the server already took, and ``EventSource`` reconnects with
``Last-Event-ID`` and catches up. The ring bounds the memory per task, in events and bytes.

    >>> ring = Ring(capacity=2, max_bytes=1024, floor=0)
    >>> for sequence in (1, 2, 3):
    ...     ring.append(sequence, b"<%d>" % sequence)
    >>> ring.floor, ring.newest, ring.since(1)
    (1, 3, b'<2><3>')
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

import grpc

from spoton.v1 import tasks_pb2
from spoton_facade.problems import problem_for_rpc
from spoton_facade.sse import HEARTBEAT, PREFLIGHT_S, TaskEventStream, format_event, format_problem

if TYPE_CHECKING:
    from collections.abc import Callable

    from spoton_facade.sse import EventStreams

log = logging.getLogger(__name__)
# Bytes of rendered events one task's ring holds at most (besides its event count): refined
# tracks of a long batch make blocks of a megabyte or more.
RING_MAX_BYTES = 32 * 1024 * 1024


class TaskCalls(Protocol):
    """What the hub calls on the service, with the subscribing browser's own credential."""

    async def get_task(self, task_id: str) -> tasks_pb2.Task: ...

    def watch_task(self, task_id: str, after_sequence: int) -> grpc.aio.UnaryStreamCall: ...


class Ring:
    """The newest rendered events of one task, in sequence order with no gap.

    Every event after ``floor`` up to ``newest`` is held; older ones were let go.
    """

    def __init__(self, capacity: int, max_bytes: int, floor: int) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._blocks: collections.deque[bytes] = collections.deque()
        self._bytes = 0
        self.floor = floor
        self.newest = floor

    def covers(self, position: int) -> bool:
        """Whether everything after ``position`` is here or still to come."""
        return self.floor <= position <= self.newest

    def append(self, sequence: int, block: bytes) -> None:
        if sequence != self.newest + 1:
            # Sequences have no gaps; should a stream skip anyway, only what follows is held.
            self._blocks.clear()
            self._bytes = 0
            self.floor = sequence - 1
        self._blocks.append(block)
        self._bytes += len(block)
        self.newest = sequence
        while len(self._blocks) > self._capacity or (self._bytes > self._max_bytes and len(self._blocks) > 1):
            self._bytes -= len(self._blocks.popleft())
            self.floor += 1

    def since(self, position: int) -> bytes:
        """The blocks after ``position`` (which the ring covers), as one chunk."""
        return b"".join(itertools.islice(self._blocks, position - self.floor, None))


class Upstream:
    """The task's one WatchTask call, pumped into a :class:`Ring` that its subscribers read."""

    def __init__(self, task_id: str, ring: Ring, instance: str) -> None:
        self.task_id = task_id
        self.ring = ring
        self.subscribers = 0
        self.ended = False
        # What ends every subscriber's stream after the ring: a problem block when the call failed.
        self.final = b""
        # Set once the opening browser's preflight is over, whatever its outcome.
        self.opened = asyncio.Event()
        # Heartbeat periods passed: a subscriber woken by a tick with nothing new sends one.
        self.ticks = 0
        self._instance = instance
        self._pump: asyncio.Task[None] | None = None
        self._stream: TaskEventStream | None = None
        # One future all subscribers wait on, resolved (and replaced) on every new event, tick,
        # end or drain. Waiting costs each subscriber a shield, not a task and a timer of its
        # own: with hundreds of browsers per task, those were a fifth of the facade's CPU.
        self._signal: asyncio.Future[None] | None = None
        self._ticker: asyncio.TimerHandle | None = None

    @property
    def live(self) -> bool:
        """Pumping, so subscribers may join."""
        return self._pump is not None and not self.ended

    def start(self, stream: TaskEventStream, on_end: Callable[[Upstream], None], heartbeat_s: float) -> None:
        self._stream = stream
        self._pump = asyncio.create_task(self._run(stream, on_end), name=f"sse-upstream-{self.task_id}")
        self._tick(heartbeat_s, first=True)
        self.opened.set()

    async def changed(self) -> None:
        """Return at the next event, tick, end or drain (cancelling a waiter cancels only it)."""
        if self._signal is None:
            self._signal = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._signal)

    def wake(self) -> None:
        if self._signal is not None:
            self._signal.set_result(None)
            self._signal = None

    def end(self) -> None:
        """No one may join any more (closed, over, or its opening preflight failed)."""
        self.ended = True
        self.opened.set()

    def close(self) -> None:
        """Cancel the call now (no await: a cancelled response scope would cancel that too)."""
        if self._stream is not None:
            self._stream.close()
        if self._pump is not None:
            self._pump.cancel()
        self._stop_ticking()

    def _tick(self, heartbeat_s: float, first: bool = False) -> None:
        if not first:
            self.ticks += 1
            self.wake()
        if not self.ended:
            self._ticker = asyncio.get_running_loop().call_later(heartbeat_s, self._tick, heartbeat_s)

    def _stop_ticking(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    async def _run(self, stream: TaskEventStream, on_end: Callable[[Upstream], None]) -> None:
        try:
            while (event := await stream.next_message()) is not grpc.aio.EOF:
                self.ring.append(event.sequence, format_event(event))
                self.wake()
        except grpc.aio.AioRpcError as exc:
            self.final = format_problem(problem_for_rpc(exc.code(), exc.details(), self._instance))
        finally:
            stream.close()
            self.ended = True
            self._stop_ticking()
            self.wake()
            on_end(self)


class Subscription:
    """One browser's stream: a catch-up over its own call, if any, then the shared upstream."""

    def __init__(self, hub: TaskHub, task_id: str, position: int) -> None:
        self._hub = hub
        self._task_id = task_id
        self._position = position
        self._upstream: Upstream | None = None
        self._own: TaskEventStream | None = None

    def follow(self, upstream: Upstream) -> bool:
        """Join ``upstream`` when its ring covers this position (no await: nothing moves meanwhile)."""
        if not upstream.live or not upstream.ring.covers(self._position):
            return False
        upstream.subscribers += 1
        self._upstream = upstream
        return True

    def catch_up(self, own: TaskEventStream) -> None:
        self._own = own

    def hand_over(self, event: tasks_pb2.TaskEvent) -> bool:
        """Called by the catch-up after each event it sent: join the upstream if it covers it now."""
        self._position = event.sequence
        upstream = self._hub.upstream(self._task_id)
        return upstream is not None and self.follow(upstream)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        try:
            if self._own is not None:
                async for block in self._own:
                    yield block
                if self._upstream is None:
                    return  # the task ended, or the call failed, during the catch-up
                self._hub.handed_over += 1
            if self._upstream is not None:
                async for block in self._follow(self._upstream):
                    yield block
        finally:
            self.close()

    async def _follow(self, upstream: Upstream) -> AsyncIterator[bytes]:
        draining = self._hub.streams.draining
        while True:
            ring = upstream.ring
            if self._position < ring.floor:
                self._hub.cut_off += 1
                log.info(
                    "SSE subscriber of task %s cut off %d events behind; it resumes with Last-Event-ID",
                    self._task_id,
                    ring.newest - self._position,
                )
                return
            if self._position < ring.newest:
                chunk = ring.since(self._position)
                self._position = ring.newest
                yield chunk
                continue
            if upstream.ended:
                if upstream.final:
                    yield upstream.final
                return
            if draining.is_set():
                return  # shutting down: the browser reconnects (elsewhere) and resumes
            ticks = upstream.ticks
            await upstream.changed()
            if upstream.ticks != ticks and self._position == upstream.ring.newest and not draining.is_set():
                yield HEARTBEAT

    def close(self) -> None:
        """Leave the upstream and cancel any catch-up call; safe to call more than once."""
        if self._own is not None:
            self._own.close()
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            self._hub.leave(upstream)

    async def aclose(self) -> None:
        """:meth:`close`, as a coroutine for response background tasks."""
        self.close()


class TaskHub:
    """The upstreams of this process, keyed by task id, each closed when its last browser leaves."""

    def __init__(self, streams: EventStreams, ring_events: int) -> None:
        self.streams = streams
        self._ring_events = ring_events
        self._upstreams: dict[str, Upstream] = {}
        # Counters for health and tests: upstream calls opened, subscribers cut off, catch-ups
        # that reached their upstream.
        self.opened = 0
        self.cut_off = 0
        self.handed_over = 0

    @property
    def upstreams(self) -> int:
        """WatchTask calls open now for shared streams (one per followed task)."""
        return len(self._upstreams)

    @property
    def subscribers(self) -> int:
        """Browsers following a shared upstream now (those still catching up not counted)."""
        return sum(u.subscribers for u in self._upstreams.values())

    def upstream(self, task_id: str) -> Upstream | None:
        return self._upstreams.get(task_id)

    async def subscribe(self, calls: TaskCalls, task_id: str, after: int, instance: str) -> Subscription | None:
        """This browser's stream of ``task_id`` after ``after``; ``None`` when the task is over
        and nothing follows. Raises the service's ``AioRpcError`` (with the browser's own
        credential) when it may not watch or cannot resume there."""
        subscription = Subscription(self, task_id, after)
        upstream = self._upstreams.get(task_id)
        if upstream is not None:
            # This browser's own credential and scope, as its own WatchTask would check them.
            await calls.get_task(task_id)
            await upstream.opened.wait()
            if subscription.follow(upstream):
                return subscription
        own = self.streams.open(calls.watch_task(task_id, after), instance, until=subscription.hand_over)
        upstream = self._upstreams.get(task_id)
        if upstream is None:
            # The first browser: its call, once open, is the task's upstream.
            ring = Ring(self._ring_events, RING_MAX_BYTES, after)
            upstream = self._upstreams[task_id] = Upstream(task_id, ring, instance)
            try:
                started = await own.preflight(PREFLIGHT_S)
            except BaseException:
                self._end(upstream)
                raise
            if not started:
                self._end(upstream)
                return None
            upstream.start(own, self._ended, self.streams.heartbeat_s)
            self.opened += 1
            log.info("SSE upstream of task %s opened (%d open)", task_id, len(self._upstreams))
            subscription.follow(upstream)
            return subscription
        if not await own.preflight(PREFLIGHT_S):
            return None
        subscription.catch_up(own)
        return subscription

    def drain(self) -> None:
        """Wake every subscriber, so that each sees the server is shutting down."""
        for upstream in self._upstreams.values():
            upstream.wake()

    def leave(self, upstream: Upstream) -> None:
        upstream.subscribers -= 1
        if upstream.subscribers == 0 and self._upstreams.get(upstream.task_id) is upstream:
            # The last browser left: close the call (the next browser opens another).
            self._end(upstream)
            upstream.close()

    def _ended(self, upstream: Upstream) -> None:
        if self._upstreams.get(upstream.task_id) is upstream:
            self._end(upstream)

    def _end(self, upstream: Upstream) -> None:
        upstream.end()
        if self._upstreams.get(upstream.task_id) is upstream:
            del self._upstreams[upstream.task_id]
            log.info("SSE upstream of task %s closed (%d open)", upstream.task_id, len(self._upstreams))
