"""SSE: TaskEvent formatting (pure), the WatchTask-backed stream's lifecycle, and the hub that
shares one WatchTask call among a task's browsers (over stand-in calls; tests/facade/
test_sse_fanout.py runs it against the real service)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import grpc
import pytest

from spoton.v1 import tasks_pb2
from spoton_facade.sse import HEARTBEAT, BlockCache, EventStreams, TaskEventStream, format_event
from spoton_facade.sse_hub import Ring, Subscription

EMITTED = dt.datetime(2025, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC)


def _event(sequence: int, **payload: Any) -> tasks_pb2.TaskEvent:
    event = tasks_pb2.TaskEvent(sequence=sequence, task_id="t1", **payload)
    event.emitted_at.FromDatetime(EMITTED)
    return event


def _parse(block: bytes) -> tuple[dict[str, str], Any]:
    text = block.decode()
    assert text.endswith("\n\n") and "\n\n" not in text[:-2]
    fields = dict(line.split(": ", 1) for line in text[:-2].split("\n"))
    return fields, json.loads(fields["data"])


def test_status_update() -> None:
    status = tasks_pb2.StatusUpdate(state=tasks_pb2.TASK_STATE_PROCESSING, progress=0.3, step="detecting")
    fields, data = _parse(format_event(_event(7, status_update=status)))
    assert fields["id"] == "7"
    assert fields["event"] == "status_update"
    assert data == {
        "sequence": 7,
        "task_id": "t1",
        "emitted_at": "2025-01-02T03:04:05.600000Z",
        "state": "processing",
        "progress": 0.3,
        "step": "detecting",
        "error": "",
    }


def test_media_available() -> None:
    media = tasks_pb2.MediaAvailable(
        sub_video_batch_index=2,
        media_urls=[
            tasks_pb2.MediaUrl(
                camera_id="c1",
                sub_video_filename="sub_video_02.mp4",
                url="/api/v1/media/tasks/t1/environments/e1/cameras/c1/sub_videos/sub_video_02.mp4",
                start_global_frame_index=300,
                num_frames_in_sub_video=150,
                fps=15.0,
            )
        ],
    )
    fields, data = _parse(format_event(_event(8, media_available=media)))
    assert fields["event"] == "media_available"
    assert data["sub_video_batch_index"] == 2
    assert data["media_urls"] == [
        {
            "camera_id": "c1",
            "sub_video_filename": "sub_video_02.mp4",
            "url": "/api/v1/media/tasks/t1/environments/e1/cameras/c1/sub_videos/sub_video_02.mp4",
            "start_global_frame_index": 300,
            "num_frames_in_sub_video": 150,
            "fps": 15.0,
        }
    ]


def test_tracking_update() -> None:
    update = tasks_pb2.TrackingUpdate(global_frame_index=2**40, scene_id="e1", environment_id="e1")
    update.timestamp_processed_utc.FromDatetime(EMITTED)
    camera = update.cameras.add(camera_id="c1", image_source="sub_video_01.mp4", frame_index_in_source=4)
    mapped = camera.tracks.add(score=0.9, track_id=3, global_id=12)
    mapped.box.x1, mapped.box.y1, mapped.box.x2, mapped.box.y2 = 10.5, 20.25, 110.1, 320.7
    mapped.map_coords.x, mapped.map_coords.y = 1.25, -3.5
    camera.tracks.add(score=0.5, track_id=4)  # unassigned global id, no homography
    update.cameras.add(camera_id="c2", image_source="sub_video_01.mp4")  # nobody in view
    fields, data = _parse(format_event(_event(9, tracking_update=update)))
    assert fields["event"] == "tracking_update"
    assert data["global_frame_index"] == 2**40  # a number, not proto3-JSON's string
    assert data["timestamp_processed_utc"] == "2025-01-02T03:04:05.600000Z"
    assert data["cameras"] == [
        {
            "camera_id": "c1",
            "image_source": "sub_video_01.mp4",
            "frame_index_in_source": 4,
            "tracks": [
                {
                    "box": {"x1": 10.5, "y1": 20.25, "x2": 110.1, "y2": 320.7},
                    "score": 0.9,
                    "track_id": 3,
                    "global_id": 12,
                    "map_coords": [1.25, -3.5],
                },
                {
                    "box": None,
                    "score": 0.5,
                    "track_id": 4,
                    "global_id": 0,
                    "map_coords": None,
                },
            ],
        },
        {"camera_id": "c2", "image_source": "sub_video_01.mp4", "frame_index_in_source": 0, "tracks": []},
    ]


def test_batch_processing_complete() -> None:
    done = tasks_pb2.BatchProcessingComplete(sub_video_batch_index=0)
    fields, data = _parse(format_event(_event(10, batch_processing_complete=done)))
    assert fields["event"] == "batch_processing_complete"
    assert data == {
        "sequence": 10,
        "task_id": "t1",
        "emitted_at": "2025-01-02T03:04:05.600000Z",
        "sub_video_batch_index": 0,
    }


def test_event_without_payload_only_advances_the_id() -> None:
    assert format_event(tasks_pb2.TaskEvent(sequence=11, task_id="t1")) == b"id: 11\n\n"


def test_block_cache_renders_each_event_once() -> None:
    cache = BlockCache(size=2)
    first = _event(1, batch_processing_complete=tasks_pb2.BatchProcessingComplete())
    block = cache.block(first)
    assert cache.block(tasks_pb2.TaskEvent.FromString(first.SerializeToString())) is block
    cache.block(_event(2, batch_processing_complete=tasks_pb2.BatchProcessingComplete()))
    cache.block(_event(3, batch_processing_complete=tasks_pb2.BatchProcessingComplete()))
    assert cache.block(first) is not block  # evicted, rendered again
    assert cache.block(first) == block


class FakeWatchCall:
    """Stands in for a grpc.aio WatchTask call: items are events, EOF or AioRpcErrors."""

    def __init__(self, *items: object, headers: bool = False) -> None:
        self.items: asyncio.Queue[object] = asyncio.Queue()
        for item in items:
            self.items.put_nowait(item)
        self.headers_sent = asyncio.Event()
        if headers:
            self.headers_sent.set()
        self.cancelled = False
        self.finished = False

    def push(self, item: object) -> None:
        self.items.put_nowait(item)

    async def read(self) -> object:
        item = await self.items.get()
        if item is grpc.aio.EOF or isinstance(item, grpc.aio.AioRpcError):
            self.finished = True
        if isinstance(item, grpc.aio.AioRpcError):
            raise item
        return item

    async def initial_metadata(self) -> tuple[()]:
        await self.headers_sent.wait()
        return ()

    def cancel(self) -> bool:
        self.cancelled = True
        return True

    def done(self) -> bool:
        return self.finished or self.cancelled


def _error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "why")


STATUS = _event(1, status_update=tasks_pb2.StatusUpdate(state=tasks_pb2.TASK_STATE_QUEUED))
DONE = _event(2, batch_processing_complete=tasks_pb2.BatchProcessingComplete())


def _stream(call: FakeWatchCall, heartbeat_s: float = 60.0) -> TaskEventStream:
    return EventStreams(heartbeat_s).open(call, instance="/api/v1/processing-tasks/t1/events")


async def _collect(stream: TaskEventStream) -> list[bytes]:
    return [block async for block in stream]


async def test_stream_yields_events_until_the_task_ends() -> None:
    call = FakeWatchCall(STATUS, DONE, grpc.aio.EOF)
    stream = _stream(call)
    assert await stream.preflight(timeout_s=1.0)
    assert await _collect(stream) == [format_event(STATUS), format_event(DONE)]
    assert call.cancelled  # cancelling a finished call is harmless, and always done


async def test_preflight_raises_early_errors() -> None:
    call = FakeWatchCall(_error(grpc.StatusCode.NOT_FOUND))
    with pytest.raises(grpc.aio.AioRpcError):
        await _stream(call).preflight(timeout_s=1.0)
    assert call.cancelled


async def test_preflight_reports_a_stream_with_nothing_to_send() -> None:
    call = FakeWatchCall(grpc.aio.EOF)
    assert not await _stream(call).preflight(timeout_s=1.0)
    assert call.cancelled


async def test_preflight_returns_on_response_headers() -> None:
    call = FakeWatchCall(headers=True)
    stream = _stream(call)
    # The timeout would fail the test; headers end the wait at once.
    assert await asyncio.wait_for(stream.preflight(timeout_s=30.0), timeout=5.0)
    await stream.aclose()


async def test_preflight_times_out_into_a_stream() -> None:
    call = FakeWatchCall()
    stream = _stream(call, heartbeat_s=0.01)
    assert await stream.preflight(timeout_s=0.01)
    blocks = aiter(stream)
    assert await anext(blocks) == HEARTBEAT
    call.push(STATUS)
    assert await anext(blocks) == format_event(STATUS)
    assert await anext(blocks) == HEARTBEAT
    await blocks.aclose()  # type: ignore[attr-defined]
    assert call.cancelled


async def test_error_mid_stream_becomes_a_problem_event() -> None:
    call = FakeWatchCall(STATUS, _error(grpc.StatusCode.UNAVAILABLE))
    stream = _stream(call)
    assert await stream.preflight(timeout_s=1.0)
    first, problem = await _collect(stream)
    assert first == format_event(STATUS)
    fields, data = _parse(problem)
    assert fields.keys() == {"event", "data"}  # no id: a reconnect resumes after the last event
    assert fields["event"] == "problem"
    assert data["status"] == 503
    assert data["grpc_status"] == "UNAVAILABLE"
    assert data["instance"] == "/api/v1/processing-tasks/t1/events"


async def test_client_going_away_cancels_the_call() -> None:
    call = FakeWatchCall(STATUS)
    stream = _stream(call)
    assert await stream.preflight(timeout_s=1.0)
    received = asyncio.Event()

    async def consume() -> None:
        async for _ in stream:
            received.set()

    consumer = asyncio.create_task(consume())
    await received.wait()
    consumer.cancel()  # what the server does when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert call.cancelled
    await asyncio.sleep(0)
    assert stream._read is not None and stream._read.done()  # no read left running


async def test_aclose_without_iterating_cancels_the_call() -> None:
    call = FakeWatchCall()
    stream = _stream(call)
    assert await stream.preflight(timeout_s=0.01)
    await stream.aclose()  # the response's background task, when the body never started
    assert call.cancelled


async def test_draining_ends_open_streams() -> None:
    streams = EventStreams(heartbeat_s=60.0)
    idle, busy = FakeWatchCall(STATUS), FakeWatchCall(STATUS)
    opened = [streams.open(call, instance="/events") for call in (idle, busy)]
    for stream in opened:
        assert await stream.preflight(timeout_s=1.0)
    consumers = [asyncio.create_task(_collect(stream)) for stream in opened]
    await asyncio.sleep(0.01)
    streams.drain()  # what the server does when shutdown begins
    assert await asyncio.wait_for(asyncio.gather(*consumers), timeout=5.0) == [[format_event(STATUS)]] * 2
    assert idle.cancelled and busy.cancelled
    late = streams.open(FakeWatchCall(headers=True), instance="/events")
    assert await late.preflight(timeout_s=1.0)
    assert await asyncio.wait_for(_collect(late), timeout=5.0) == []


# -- the hub: one upstream call per task --------------------------------------------------------

TASK = "t1"
INSTANCE = f"/api/v1/processing-tasks/{TASK}/events"


class FakeTaskCalls:
    """Stands in for one browser's InferenceClient: GetTask answers (or refuses), and each
    WatchTask is a FakeWatchCall that has sent its headers."""

    def __init__(self, refuse: grpc.StatusCode | None = None) -> None:
        self.refuse = refuse
        self.lookups = 0
        self.watches: list[tuple[int, FakeWatchCall]] = []

    async def get_task(self, task_id: str) -> tasks_pb2.Task:
        self.lookups += 1
        if self.refuse is not None:
            raise _error(self.refuse)
        return tasks_pb2.Task(task_id=task_id)

    def watch_task(self, task_id: str, after_sequence: int) -> FakeWatchCall:
        call = FakeWatchCall(headers=True)
        self.watches.append((after_sequence, call))
        return call


def _tick(sequence: int) -> tasks_pb2.TaskEvent:
    return _event(sequence, batch_processing_complete=tasks_pb2.BatchProcessingComplete())


def _blocks_of(*sequences: int) -> bytes:
    return b"".join(format_event(_tick(s)) for s in sequences)


async def _subscribe(streams: EventStreams, calls: FakeTaskCalls, after: int = 0) -> Subscription:
    subscription = await streams.tasks.subscribe(calls, TASK, after, instance=INSTANCE)
    assert subscription is not None
    return subscription


async def _read_until(blocks: Any, expected: bytes) -> bytes:
    """Chunks from ``blocks`` until they add up to ``expected`` (heartbeats left out)."""
    got = b""
    async with asyncio.timeout(5):
        while len(got) < len(expected):
            chunk = await anext(blocks)
            if chunk != HEARTBEAT:
                got += chunk
    return got


def test_ring_holds_the_newest_events_within_its_bounds() -> None:
    ring = Ring(capacity=3, max_bytes=9, floor=0)
    for sequence in range(1, 6):
        ring.append(sequence, b"%d" % sequence)
    assert (ring.floor, ring.newest, ring.since(2)) == (2, 5, b"345")
    assert ring.covers(2) and ring.covers(5) and not ring.covers(1) and not ring.covers(6)
    ring.append(6, b"x" * 8)  # past max_bytes: older blocks go, the newest always stays
    assert (ring.floor, ring.since(ring.floor)) == (4, b"5" + b"x" * 8)


async def test_a_tasks_browsers_share_one_call_each_checked_with_its_own_credential() -> None:
    streams = EventStreams(heartbeat_s=60.0)
    first, others = FakeTaskCalls(), [FakeTaskCalls() for _ in range(3)]
    subscriptions = [await _subscribe(streams, first)] + [await _subscribe(streams, c) for c in others]
    assert len(first.watches) == 1 and all(not c.watches and c.lookups == 1 for c in others)
    assert (streams.tasks.upstreams, streams.tasks.subscribers) == (1, 4)
    (_, call) = first.watches[0]
    for sequence in (1, 2, 3):
        call.push(_tick(sequence))
    readers = [aiter(s) for s in subscriptions]
    assert [await _read_until(r, _blocks_of(1, 2, 3)) for r in readers] == [_blocks_of(1, 2, 3)] * 4
    # A browser joining now is served the recent events from memory.
    late = aiter(await _subscribe(streams, FakeTaskCalls(), after=1))
    assert await _read_until(late, _blocks_of(2, 3)) == _blocks_of(2, 3)
    for reader in [*readers, late]:
        await reader.aclose()  # type: ignore[attr-defined]
    # The last browser gone, the call goes too.
    assert call.cancelled and streams.tasks.upstreams == 0


async def test_a_joiner_refused_by_the_service_does_not_disturb_the_others() -> None:
    streams = EventStreams(heartbeat_s=60.0)
    first = FakeTaskCalls()
    subscription = aiter(await _subscribe(streams, first))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _subscribe(streams, FakeTaskCalls(refuse=grpc.StatusCode.NOT_FOUND))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND  # another environment's task, say
    first.watches[0][1].push(_tick(1))
    assert await _read_until(subscription, _blocks_of(1)) == _blocks_of(1)
    assert streams.tasks.subscribers == 1
    await subscription.aclose()  # type: ignore[attr-defined]


async def test_a_slow_browser_is_cut_off_and_never_holds_up_the_others() -> None:
    streams = EventStreams(heartbeat_s=60.0, replay_events=4)
    calls = FakeTaskCalls()
    fast, slow = aiter(await _subscribe(streams, calls)), aiter(await _subscribe(streams, FakeTaskCalls()))
    call = calls.watches[0][1]
    call.push(_tick(1))
    assert await _read_until(slow, _blocks_of(1)) == _blocks_of(1)  # then it stops reading
    for sequence in range(2, 11):
        call.push(_tick(sequence))
    assert await _read_until(fast, _blocks_of(*range(1, 11))) == _blocks_of(*range(1, 11))
    # The slow one fell out of the ring: its stream ends, so its browser resumes after event 1.
    with pytest.raises(StopAsyncIteration):
        await anext(slow)
    assert streams.tasks.cut_off == 1 and streams.tasks.subscribers == 1
    await fast.aclose()  # type: ignore[attr-defined]


async def test_a_resume_older_than_the_ring_catches_up_on_its_own_call_then_joins() -> None:
    streams = EventStreams(heartbeat_s=60.0, replay_events=4)
    calls = FakeTaskCalls()
    first = aiter(await _subscribe(streams, calls))
    upstream = calls.watches[0][1]
    for sequence in range(1, 11):
        upstream.push(_tick(sequence))
    assert await _read_until(first, _blocks_of(*range(1, 11))) == _blocks_of(*range(1, 11))
    resuming = FakeTaskCalls()
    behind = aiter(await _subscribe(streams, resuming, after=2))  # the ring holds 7..10
    (after, own) = resuming.watches[0]
    assert after == 2
    for sequence in range(3, 8):  # the service replays from the resume point
        own.push(_tick(sequence))
    assert await _read_until(behind, _blocks_of(*range(3, 7))) == _blocks_of(*range(3, 7))
    # Event 6 reached the ring: the own call is dropped and the rest comes from the upstream.
    assert await _read_until(behind, _blocks_of(7, 8, 9, 10)) == _blocks_of(7, 8, 9, 10)
    assert own.cancelled and streams.tasks.handed_over == 1
    upstream.push(_tick(11))
    assert await _read_until(behind, _blocks_of(11)) == _blocks_of(11)
    assert streams.tasks.upstreams == 1 and streams.tasks.subscribers == 2
    for reader in (first, behind):
        await reader.aclose()  # type: ignore[attr-defined]


async def test_the_task_ending_or_the_call_failing_ends_every_browser() -> None:
    streams = EventStreams(heartbeat_s=60.0)
    calls = FakeTaskCalls()
    readers = [aiter(await _subscribe(streams, c)) for c in (calls, FakeTaskCalls())]
    call = calls.watches[0][1]
    call.push(_tick(1))
    call.push(_error(grpc.StatusCode.UNAVAILABLE))
    for reader in readers:
        assert await _read_until(reader, _blocks_of(1)) == _blocks_of(1)
        fields, data = _parse(await anext(reader))
        assert fields["event"] == "problem" and data["status"] == 503 and data["instance"] == INSTANCE
        with pytest.raises(StopAsyncIteration):
            await anext(reader)
    assert streams.tasks.upstreams == 0  # the next browser opens a new call


async def test_a_finished_task_with_nothing_after_the_resume_point_is_none() -> None:
    streams = EventStreams(heartbeat_s=60.0)
    calls = FakeTaskCalls()
    calls.watch_task = lambda task_id, after: FakeWatchCall(grpc.aio.EOF)  # type: ignore[method-assign]
    assert await streams.tasks.subscribe(calls, TASK, 5, instance=INSTANCE) is None
    assert streams.tasks.upstreams == 0
