"""StreamFrames throughput with a fixed number of frames in flight, and its ceiling: the same
detector-plus-embedder calls made directly on Triton.

Which detections the live tracker embeds depends on its state; the ceiling embeds those at or
above the detection threshold (the track-start score), one embedder call per frame, as the
live pipeline batches a frame's crops.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from serving_lib.stats import Summary, summarize
from serving_lib.triton_direct import DirectTriton, run_concurrent
from spoton.v1 import inference_pb2, inference_pb2_grpc
from spoton_client.auth import authed_channel
from spoton_inference.pipeline.triton_models import crop_people

# The tracker's low score (tracking.camera.TrackerConfig.low_score): the pipeline detects down to it.
LOW_SCORE = 0.1
STREAM_TIMEOUT_S = 600.0


async def stream_throughput(
    target: str, api_key: str, environment_id: str, camera_id: str, jpegs: list[bytes], in_flight: int
) -> tuple[Summary, int]:
    """Frames answered per second over one stream, ``in_flight`` frames unanswered at most,
    and the frames the server dropped by back-pressure."""
    window = asyncio.Semaphore(in_flight)
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    dropped = 0

    async def requests():
        for i, data in enumerate(jpegs):
            await window.acquire()
            sent_at[i] = time.perf_counter()
            yield inference_pb2.StreamFramesRequest(
                environment_id=environment_id, camera_id=camera_id, encoded=data, frame_id=i
            )

    async with authed_channel(target, api_key=api_key) as channel:
        call = inference_pb2_grpc.InferenceServiceStub(channel).StreamFrames(requests(), timeout=STREAM_TIMEOUT_S)
        started = time.perf_counter()
        async for response in call:
            latencies.append((time.perf_counter() - sent_at[response.frame_id]) * 1e3)
            dropped = response.dropped_frames_total
            # A dropped frame is never answered: its slot comes back with the next answer.
            for _ in range(response.dropped_frames + 1):
                window.release()
        wall = time.perf_counter() - started
    return summarize(latencies, wall), dropped


async def direct_ceiling(
    triton: DirectTriton, frames: list[np.ndarray], score_threshold: float, in_flight: int
) -> Summary:
    """Per frame: the detector down to LOW_SCORE, then one embedder call with the crops at or
    above ``score_threshold`` (cut once beforehand, so only Triton's time is measured)."""
    crops = []
    for frame in frames:
        boxes, scores = await triton.detect(frame, LOW_SCORE)
        crops.append(crop_people(frame, boxes[scores >= score_threshold]))

    async def one(frame: np.ndarray, frame_crops: np.ndarray) -> None:
        await triton.detect(frame, LOW_SCORE)
        await triton.embed(frame_crops)

    calls = [lambda f=f, c=c: one(f, c) for f, c in zip(frames, crops, strict=True)]
    return await run_concurrent(calls, in_flight)
