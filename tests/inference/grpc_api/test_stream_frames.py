"""StreamFrames on real parts: embedded Triton, PostgreSQL and Redis, the inference service
in this process (``live_service``, so the test can see its tasks and counters) behind a real
gRPC channel, and frames from a generated scene video.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from spoton.v1 import inference_pb2, inference_pb2_grpc
from spoton_inference.app import InferenceApp
from spoton_inference.pipeline.live import (
    DEFAULT_QUEUE_FRAMES,
    DETECT_TASK_PREFIX,
    DISPATCHER_TASK_PREFIX,
    READER_TASK_PREFIX,
)
from spoton_inference.scenes.config import demo_config
from spoton_inference.scenes.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ENV_ID = "stream-site"


@pytest.fixture(scope="module")
def env_dir(tmp_path_factory) -> Path:
    config = dataclasses.replace(demo_config(seed=3), frames_per_batch=24, n_batches=1, n_people=5)
    path = generate(config, tmp_path_factory.mktemp("env") / "site")
    doc = json.loads((path / "environment.json").read_text())
    (path / "environment.json").write_text(json.dumps({**doc, "id": ENV_ID}))  # apart from other tests' sites
    return path


@pytest.fixture(scope="module")
def jpegs(env_dir) -> dict[str, list[bytes]]:
    out = {}
    for cam in ("c01", "c02", "c03"):
        cap = cv2.VideoCapture(str(env_dir / "cameras" / cam / "sub_video_01.mp4"))
        frames = []
        while (got := cap.read())[0]:
            frames.append(cv2.imencode(".jpg", got[1])[1].tobytes())
        cap.release()
        out[cam] = frames
    return out


@pytest_asyncio.fixture(scope="module")
async def app(live_service, env_dir) -> InferenceApp:
    await live_service.app.catalog.register_directory(str(env_dir))
    return live_service.app


@pytest_asyncio.fixture
async def stub(channel, app) -> AsyncIterator[inference_pb2_grpc.InferenceServiceStub]:
    yield inference_pb2_grpc.InferenceServiceStub(channel)
    await _no_stream_left(app)


def _frame(camera: str, jpeg: bytes, frame_id: int, seconds: float | None = None, **ids):
    request = inference_pb2.StreamFramesRequest(camera_id=camera, encoded=jpeg, frame_id=frame_id, **ids)
    if seconds is not None:
        ts = Timestamp()
        ts.FromNanoseconds(int((1_700_000_000 + seconds) * 1e9))
        request.timestamp.CopyFrom(ts)
    return request


async def _no_stream_left(app: InferenceApp) -> None:
    """Every stream's session closed and its reader, dispatcher and detection tasks gone (they
    unwind asynchronously)."""
    prefixes = (READER_TASK_PREFIX, DISPATCHER_TASK_PREFIX, DETECT_TASK_PREFIX)
    for _ in range(200):
        left = [t for t in asyncio.all_tasks() if t.get_name().startswith(prefixes)]
        if app.live.open_streams == 0 and not left:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{app.live.open_streams} live streams still open, tasks left: {left}")


def _iou(a, b) -> float:
    iw = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    ih = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = iw * ih
    return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter)


async def test_frames_in_tracks_out_with_stable_local_ids(stub, jpegs):
    call = stub.StreamFrames()
    replies = []
    n = 20
    for i in range(n):
        for k, cam in enumerate(("c02", "c03")):  # c01 sees nobody in this stretch of the scene
            # In lock-step (one frame in flight), so nothing is dropped; 10 fps capture times.
            ids = {"environment_id": ENV_ID} if i == k == 0 else {}
            await call.write(_frame(cam, jpegs[cam][i], frame_id=1000 + 2 * i + k, seconds=i / 10, **ids))
            replies.append(await call.read())
    await call.done_writing()
    assert await call.read() == grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK

    assert [r.sequence for r in replies] == list(range(2 * n))
    assert [r.frame_id for r in replies] == [1000 + s for s in range(2 * n)]
    assert {r.environment_id for r in replies} == {ENV_ID}
    assert all(r.dropped_frames == 0 and r.dropped_frames_total == 0 for r in replies)
    assert [r.global_frame_index for r in replies[::2]] == list(range(n))  # from the timestamps
    assert abs(replies[3].timestamp.ToNanoseconds() - int((1_700_000_000 + 0.1) * 1e9)) < 1000
    assert (replies[0].width, replies[0].height) == (640, 480)

    for cam in ("c02", "c03"):
        mine = [r for r in replies if r.camera_id == cam]
        assert sum(len(r.tracks) for r in mine) >= n // 2, f"{cam}: too few tracks"
        for r in mine:
            for t in r.tracks:
                assert t.track_id > 0 and t.global_id > 0 and 0 < t.score <= 1
                assert 0 <= t.box.x1 < t.box.x2 <= r.width and t.HasField("map_coords")
        # Stable local ids: a person's box in consecutive frames keeps its track id.
        same = pairs = 0
        for prev, cur in itertools.pairwise(mine):
            for t in cur.tracks:
                best = max(prev.tracks, key=lambda p, t=t: _iou(p.box, t.box), default=None)
                if best is not None and _iou(best.box, t.box) > 0.5:
                    pairs += 1
                    same += best.track_id == t.track_id
        assert pairs >= n // 2 and same / pairs >= 0.95, f"{cam}: {same}/{pairs} consecutive boxes kept their id"


async def _stream_with_in_flight(stub, frames: list[inference_pb2.StreamFramesRequest], in_flight: int) -> list:
    """The replies to ``frames`` from a client that keeps ``in_flight`` of them unanswered."""
    call = stub.StreamFrames(metadata=(("spoton-environment-id", ENV_ID),))
    replies = []
    for i, request in enumerate(frames):
        if i >= in_flight:  # the window is full: the oldest answer first
            replies.append(await call.read())
        await call.write(request)
    await call.done_writing()
    replies += [r async for r in call]
    assert await call.code() == grpc.StatusCode.OK
    return replies


def _tracks(reply) -> list[tuple]:
    return [(t.track_id, t.global_id, t.box.x1, t.box.y1, t.box.x2, t.box.y2, t.score) for t in reply.tracks]


async def test_frames_in_flight_within_the_window_are_all_answered_in_order_with_the_same_tracks(stub, app, jpegs):
    window = app.settings.stream_max_in_flight
    assert window >= 4
    frames = [
        _frame(cam, jpegs[cam][i], frame_id=2 * i + k, seconds=i / 10)
        for i in range(12)
        for k, cam in enumerate(("c02", "c03"))
    ]
    dropped = app.live.frames_dropped
    one = await _stream_with_in_flight(stub, frames, 1)
    several = await _stream_with_in_flight(stub, frames, window)

    # Every frame answered, in the order sent, none dropped: the window is not back-pressure.
    for replies in (one, several):
        assert [r.frame_id for r in replies] == list(range(len(frames)))
        assert [r.sequence for r in replies] == list(range(len(frames)))
        assert all(r.dropped_frames == 0 and r.dropped_frames_total == 0 for r in replies)
    assert app.live.frames_dropped == dropped
    # Detection runs ahead, tracking stays in order: the very same tracks, ids included.
    assert sum(len(r.tracks) for r in one) >= len(frames) // 2, "too few tracks to compare"
    assert [_tracks(r) for r in several] == [_tracks(r) for r in one]
    assert [r.global_frame_index for r in several] == [r.global_frame_index for r in one]


async def test_a_client_that_outruns_the_pipeline_gets_drops_counted_and_the_newest_frame(stub, app, jpegs):
    frames = jpegs["c02"]
    before = app.live.frames_dropped
    metadata = (("spoton-environment-id", ENV_ID), ("spoton-camera-id", "c02"))
    call = stub.StreamFrames(metadata=metadata)
    for i, jpeg in enumerate(frames):  # as fast as the channel takes them, without reading
        await call.write(inference_pb2.StreamFramesRequest(encoded=jpeg, frame_id=i))
    await call.done_writing()
    replies = [r async for r in call]
    assert await call.code() == grpc.StatusCode.OK

    last = replies[-1]
    assert last.dropped_frames_total > 0, "the pipeline kept up: nothing to test"
    assert len(replies) + last.dropped_frames_total == len(frames)
    assert sum(r.dropped_frames for r in replies) == last.dropped_frames_total
    # Drop-oldest: the newest frame is always answered; answers stay in order.
    assert last.sequence == last.frame_id == len(frames) - 1
    sequences = [r.sequence for r in replies]
    assert sequences == sorted(set(sequences))
    # A drop shows as a gap in sequence numbers exactly as large as the count reported.
    for prev, cur in itertools.pairwise(replies):
        assert cur.sequence - prev.sequence - 1 == cur.dropped_frames
    # Never more frames waiting than the buffer holds; the service counts the drops too.
    assert app.live.max_queue_depth <= DEFAULT_QUEUE_FRAMES
    assert app.live.frames_dropped - before == last.dropped_frames_total


async def test_half_close_answers_the_frames_in_flight_then_ends_ok(stub, jpegs):
    metadata = (("spoton-environment-id", ENV_ID),)
    call = stub.StreamFrames(metadata=metadata)
    for i in range(3):
        await call.write(_frame("c01", jpegs["c01"][i], frame_id=i))
    await call.done_writing()
    replies = [r async for r in call]
    assert await call.code() == grpc.StatusCode.OK
    assert replies and replies[-1].sequence == 2
    assert len(replies) + replies[-1].dropped_frames_total == 3

    empty = stub.StreamFrames(metadata=metadata)
    await empty.done_writing()
    assert [r async for r in empty] == [] and await empty.code() == grpc.StatusCode.OK


GOOD = object()  # stands for a good JPEG frame of c01


@pytest.mark.parametrize(
    ("metadata", "requests", "code", "words"),
    [
        pytest.param(
            (),
            [inference_pb2.StreamFramesRequest(environment_id=ENV_ID, camera_id="c01", encoded=b"\xff\xd8 not a jpeg")],
            grpc.StatusCode.INVALID_ARGUMENT,
            ["frame 0", "could not be decoded"],
            id="undecodable",
        ),
        pytest.param(
            (("spoton-environment-id", ENV_ID),),
            [
                GOOD,
                inference_pb2.StreamFramesRequest(
                    camera_id="c01", raw=inference_pb2.RawImage(data=b"\0" * 100, width=64, height=48)
                ),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            ["frame 1", "expected width*height*3"],
            id="raw-wrong-shape",
        ),
        pytest.param(
            (("spoton-environment-id", ENV_ID),),
            [GOOD, inference_pb2.StreamFramesRequest(camera_id="c99", encoded=b"x")],
            grpc.StatusCode.NOT_FOUND,
            ["c99", "c01, c02, c03"],
            id="unknown-camera",
        ),
        pytest.param(
            (),
            [inference_pb2.StreamFramesRequest(environment_id="nowhere", camera_id="c01", encoded=b"x")],
            grpc.StatusCode.NOT_FOUND,
            ["nowhere", ENV_ID],
            id="unknown-environment",
        ),
        pytest.param(
            (("spoton-environment-id", "nowhere"),),
            [],
            grpc.StatusCode.NOT_FOUND,
            ["nowhere"],
            id="unknown-environment-in-metadata",
        ),
        pytest.param(
            (),
            [inference_pb2.StreamFramesRequest(camera_id="c01", encoded=b"x")],
            grpc.StatusCode.INVALID_ARGUMENT,
            ["spoton-environment-id"],
            id="no-environment",
        ),
        pytest.param(
            (("spoton-environment-id", ENV_ID),),
            [inference_pb2.StreamFramesRequest(camera_id="c01")],
            grpc.StatusCode.INVALID_ARGUMENT,
            ["encoded", "raw"],
            id="no-image",
        ),
        pytest.param(
            (("spoton-environment-id", ENV_ID),),
            [GOOD, inference_pb2.StreamFramesRequest(environment_id="other", camera_id="c01", encoded=b"x")],
            grpc.StatusCode.INVALID_ARGUMENT,
            ["bound to environment", "other"],
            id="switching-environment",
        ),
    ],
)
async def test_a_bad_frame_ends_the_stream_with_a_status_after_answering_the_good_ones(
    stub, app, live_service, jpegs, metadata, requests, code, words
):
    call = stub.StreamFrames(metadata=metadata)
    good = [r for r in requests if r is GOOD]
    for r in requests:
        await call.write(_frame("c01", jpegs["c01"][0], frame_id=7) if r is GOOD else r)
    await call.done_writing()
    replies = []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for reply in call:
            replies.append(reply)
    assert err.value.code() == code, err.value.details()
    for word in words:
        assert word in err.value.details()
    assert [r.frame_id for r in replies] == [7] * len(good)  # frames before the bad one are answered

    await _no_stream_left(app)
    async with grpc.aio.insecure_channel(live_service.target) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_frame_over_the_message_limit_is_resource_exhausted(stub, app, jpegs):
    limit = app.settings.grpc_max_message_bytes  # the server's limit comes from the settings
    call = stub.StreamFrames(metadata=(("spoton-environment-id", ENV_ID), ("spoton-camera-id", "c01")))
    await call.write(inference_pb2.StreamFramesRequest(encoded=jpegs["c01"][0], frame_id=1))
    assert (await call.read()).frame_id == 1
    await call.write(inference_pb2.StreamFramesRequest(encoded=b"\0" * (limit + 1)))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_cancelling_the_call_cancels_the_pipeline_and_leaves_no_task(stub, app, jpegs):
    call = stub.StreamFrames(metadata=(("spoton-environment-id", ENV_ID), ("spoton-camera-id", "c01")))

    async def keep_sending() -> None:
        i = 0
        while True:
            await call.write(inference_pb2.StreamFramesRequest(encoded=jpegs["c01"][i % 24], frame_id=i))
            i += 1
            await asyncio.sleep(0.005)

    sender = asyncio.create_task(keep_sending())
    try:
        first = await call.read()
        # Frames are sent with frame_id = their position, so the first answer names its own
        # position, and any frame before it shows as dropped.
        assert first.sequence == first.frame_id == first.dropped_frames, first
        assert app.live.open_streams == 1
        call.cancel()
        assert await call.code() == grpc.StatusCode.CANCELLED
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    await _no_stream_left(app)
    answered = app.live.frames_answered
    await asyncio.sleep(0.3)
    assert app.live.frames_answered == answered, "the pipeline kept running after the cancel"


async def test_a_deadline_ends_the_stream_with_deadline_exceeded_and_no_leak(stub, app, jpegs):
    call = stub.StreamFrames(metadata=(("spoton-environment-id", ENV_ID),), timeout=2.0)
    await call.write(_frame("c01", jpegs["c01"][0], frame_id=1))
    assert (await call.read()).frame_id == 1
    # Keep the stream open without half-closing: the deadline must end it.
    assert await call.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await _no_stream_left(app)


async def test_raw_bgr_frames_are_accepted_and_health_reports_the_streams(stub, app, env_dir):
    cap = cv2.VideoCapture(str(env_dir / "cameras" / "c03" / "sub_video_01.mp4"))
    bgr = cap.read()[1]
    cap.release()
    h, w = bgr.shape[:2]
    raw = inference_pb2.RawImage(data=np.ascontiguousarray(bgr).tobytes(), width=w, height=h)
    call = stub.StreamFrames()
    await call.write(inference_pb2.StreamFramesRequest(environment_id=ENV_ID, camera_id="c03", raw=raw))
    await call.done_writing()
    [reply] = [r async for r in call]
    assert (reply.camera_id, reply.width, reply.height) == ("c03", w, h)
    report = {c.name: c for c in (await app.health()).components}
    assert report["live_streams"].status == "healthy" and "dropped by back-pressure" in report["live_streams"].detail
