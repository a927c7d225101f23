"""``InferenceService``: ``Detect`` on one image (services/detection.py), and ``StreamFrames``,
the bidi edge over :class:`~spoton_inference.services.live_streams.LiveStreams`.

Frames are pipelined (see :mod:`spoton_inference.pipeline.live`): a client may keep up to
``SPOTON_STREAM_MAX_IN_FLIGHT`` frames unanswered without losing any; answers come in the
order sent, and frames dropped beyond that window are counted in ``dropped_frames``.

``StreamFrames`` is a coroutine that writes with ``context.write`` rather than an
async generator: a cancelled call then unwinds one call stack, so the session's reader
task is always cancelled and awaited before the handler returns, never left to GC.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc

from spoton.v1 import (
    common_pb2,
    inference_pb2,
    inference_pb2_grpc,
)
from spoton_inference.domain.environment import Environment
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.live_frames import LiveFrame, LiveResult, RawPixels
from spoton_inference.grpc_api import convert
from spoton_inference.grpc_api.errors import unary
from spoton_inference.services.detection import Detect
from spoton_inference.services.live_streams import LiveStreams

# Metadata a client may send instead of the first message's ids (grpcurl -H, ghz --metadata).
ENVIRONMENT_METADATA = "spoton-environment-id"
CAMERA_METADATA = "spoton-camera-id"


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, detect: Detect, live: LiveStreams, *, max_image_pixels: int, detection_threshold: float) -> None:
        """``max_image_pixels`` and ``detection_threshold``: SPOTON_MAX_IMAGE_PIXELS and the
        threshold a Detect request without its own gets (SPOTON_DETECTION_THRESHOLD)."""
        self.detect = detect
        self.live = live
        self.max_image_pixels = max_image_pixels
        self.detection_threshold = detection_threshold

    @unary
    async def Detect(self, request, context):
        which, limit = request.WhichOneof("image"), self.max_image_pixels
        threshold = request.score_threshold or self.detection_threshold
        if which == "encoded":
            result = await self.detect.detect_encoded(request.encoded, limit, threshold, request.include_embeddings)
        elif which == "raw":
            raw = request.raw
            result = await self.detect.detect_raw(
                raw.data, raw.width, raw.height, limit, threshold, request.include_embeddings
            )
        else:
            raise InvalidArgument("set either `encoded` (JPEG/PNG bytes) or `raw` (BGR pixels with width and height)")
        response = inference_pb2.DetectResponse(width=result.width, height=result.height)
        for i, (box, score) in enumerate(zip(result.boxes, result.scores, strict=True)):
            det = response.detections.add(box=common_pb2.Box(x1=box[0], y1=box[1], x2=box[2], y2=box[3]), score=score)
            if result.embeddings is not None:
                det.embedding.extend(result.embeddings[i].tolist())
        return response

    @unary  # maps core errors to status codes for any coroutine handler, this one included
    async def StreamFrames(
        self, request_iterator: AsyncIterator[inference_pb2.StreamFramesRequest], context: grpc.aio.ServicerContext
    ) -> None:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        env = self.live.environment(metadata[ENVIRONMENT_METADATA]) if metadata.get(ENVIRONMENT_METADATA) else None
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None:
            return  # half-closed before any frame: nothing to answer
        if env is None:
            if not first.environment_id:
                raise InvalidArgument(
                    f"no environment: set environment_id on the first message or the {ENVIRONMENT_METADATA!r} metadata"
                )
            env = self.live.environment(first.environment_id)
        frames = _frames(env, first, requests, metadata.get(CAMERA_METADATA, ""))
        async with contextlib.aclosing(self.live.stream(env, frames)) as results:
            async for result in results:
                await context.write(_response(result))


async def _frames(
    env: Environment,
    first: inference_pb2.StreamFramesRequest,
    rest: AsyncIterator[inference_pb2.StreamFramesRequest],
    camera: str,
) -> AsyncIterator[LiveFrame]:
    request: inference_pb2.StreamFramesRequest | None = first
    while request is not None:
        if request.environment_id and request.environment_id != env.environment_id:
            raise InvalidArgument(
                f"this stream is bound to environment {env.environment_id!r}, got a frame for "
                f"{request.environment_id!r}: open one stream per environment"
            )
        camera = request.camera_id or camera  # sticky: empty repeats the previous camera
        if not camera:
            raise InvalidArgument(f"no camera: set camera_id on the frame or the {CAMERA_METADATA!r} metadata")
        which = request.WhichOneof("image")
        if which == "encoded":
            image: bytes | RawPixels = request.encoded
        elif which == "raw":
            image = RawPixels(request.raw.data, request.raw.width, request.raw.height)
        else:
            raise InvalidArgument("frame has no image: set `encoded` (JPEG/PNG bytes) or `raw` (BGR pixels with shape)")
        timestamp = request.timestamp.ToNanoseconds() / 1e9 if request.HasField("timestamp") else None
        yield LiveFrame(camera, image, timestamp, request.frame_id)
        request = await anext(rest, None)


def _response(r: LiveResult) -> inference_pb2.StreamFramesResponse:
    out = inference_pb2.StreamFramesResponse(
        environment_id=r.environment_id,
        camera_id=r.camera_id,
        frame_id=r.frame_id,
        sequence=r.sequence,
        timestamp=convert.timestamp(r.timestamp),
        global_frame_index=r.global_frame_index,
        timestamp_processed_utc=convert.timestamp(r.processed_at),
        width=r.width,
        height=r.height,
        dropped_frames=r.dropped_frames,
        dropped_frames_total=r.dropped_frames_total,
    )
    for t in r.tracks:
        convert.add_track(out.tracks, t.box, t.score, t.track_id, t.global_id, t.map_xy)
    return out
