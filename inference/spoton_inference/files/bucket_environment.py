"""Loading an environment whose recordings live in an S3-compatible bucket (``s3://bucket/prefix``).

The layout under the prefix is an environment directory's (files/environment_dir.py)::

    <prefix>/environment.json
    <prefix>/cameras/<camera_id>/sub_video_01.mp4, sub_video_02.mp4, ...

Registration reads environment.json (a small object) and lists the sub-videos, then probes each
one over a short-lived presigned URL with FFmpeg, which reads only the container's header and
index: nothing is downloaded whole. Each SubVideo carries its object (``remote``: key, size,
ETag) and, as ``path``, the file the recording cache keeps it in once a task fetches it.

A floor-plan image named by environment.json is not fetched from the bucket: the floor map keeps
its metres_per_pixel and has no image (a warning says so). Errors name ``s3://bucket/key`` only,
never an endpoint's credentials or a presigned URL (it carries the access key id and a signature).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import av
import av.error

from spoton_inference.domain.environment import (
    MAX_URI_ECHO_CHARS,
    BucketSource,
    Environment,
    RemoteObject,
    SubVideo,
    parse_bucket_uri,
)
from spoton_inference.domain.errors import InvalidArgument, NotFound
from spoton_inference.files.environment_dir import (
    SUB_VIDEO_NAME,
    environment_from_doc,
    manifest_camera_ids,
    parse_manifest,
)

log = logging.getLogger(__name__)

MANIFEST = "environment.json"
# environment.json is a few KiB; anything far larger is not one.
MANIFEST_MAX_BYTES = 1024 * 1024
# A presigned URL lives only as long as one probe needs it.
PROBE_URL_TTL_S = 300
# FFmpeg's open and each read are bounded by this, so a stalled endpoint cannot hold a thread.
PROBE_TIMEOUT_S = 30.0
# Sub-videos probed at once (each holds a worker thread and an HTTP connection).
PROBE_CONCURRENCY = 8


class BucketObjects(Protocol):
    """What loading needs of object storage (files/object_store.ObjectStore)."""

    async def list(self, bucket: str, prefix: str) -> list[RemoteObject]: ...
    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes: ...
    def presigned_url(self, obj: RemoteObject, expires_s: int) -> str: ...


# Where the recording cache keeps an object once fetched (files/recording_cache.RecordingCache.path_for).
CachePath = Callable[[RemoteObject], Path]
# (frames, width, height, fps) of the video at a URL, None when it is not a readable video; blocking.
ProbeUrl = Callable[[str], "tuple[int, int, int, float] | None"]


async def load_bucket_environment(
    store: BucketObjects, path_for: CachePath, uri: str, *, probe: ProbeUrl | None = None
) -> Environment:
    """Read and validate the environment at ``s3://bucket/prefix``, probing its sub-videos remotely.

    NotFound names ``s3://bucket/prefix/environment.json`` when it is missing; the store's
    PermissionDenied names the key that was refused; InvalidArgument a bad URI, manifest or video.
    """
    source = parse_bucket_uri(uri)
    manifest = RemoteObject(source.bucket, source.key(MANIFEST), 0, "")
    try:
        text = await store.read(source.bucket, manifest.key, MANIFEST_MAX_BYTES)
    except NotFound as exc:
        raise NotFound(
            f"{manifest.uri} not found: an environment in object storage is a prefix holding environment.json "
            "and cameras/<id>/sub_video_NN.mp4; check the bucket and the prefix"
        ) from exc
    doc = parse_manifest(text, manifest.uri)
    found = await _sub_videos(store, source, manifest_camera_ids(doc))
    probed = await _probe_all(store, found, probe or probe_url)
    scans: dict[str, tuple[tuple[SubVideo, ...], tuple[int, int, float] | None]] = {}
    for camera_id, objs in found.items():
        subs, first = [], None
        for obj in objs:
            result = probed[obj.key]
            if result is None:
                raise InvalidArgument(f"camera {camera_id!r}: {obj.uri} is not a readable video")
            frames, width, height, fps = result
            subs.append(SubVideo(path_for(obj), frames, remote=obj))
            first = first or (width, height, fps)
        scans[camera_id] = (tuple(subs), first)
    env = environment_from_doc(doc, manifest.uri, lambda camera_id: scans.get(camera_id, ((), None)))
    image = (doc.get("map") or {}).get("image")
    if image:
        log.warning(
            "environment %r (%s): map.image %r is not fetched from object storage; the floor map has no image",
            env.environment_id,
            source.uri,
            str(image)[:MAX_URI_ECHO_CHARS],
        )
    return dataclasses.replace(env, bucket=source)


async def _sub_videos(
    store: BucketObjects, source: BucketSource, camera_ids: list[str]
) -> dict[str, list[RemoteObject]]:
    """Each camera's ``cameras/<id>/sub_video_NN.mp4`` objects, in batch order (one listing)."""
    cameras = source.key("cameras") + "/"
    wanted = set(camera_ids)
    by_camera: dict[str, list[tuple[int, RemoteObject]]] = {c: [] for c in camera_ids}
    for obj in await store.list(source.bucket, cameras):
        camera_id, _, name = obj.key[len(cameras) :].partition("/")
        match = SUB_VIDEO_NAME.match(name)
        if camera_id in wanted and match is not None:  # a deeper key has a '/' in name: no match
            by_camera[camera_id].append((int(match.group(1)), obj))
    return {c: [obj for _, obj in sorted(objs, key=lambda n_obj: n_obj[0])] for c, objs in by_camera.items()}


async def _probe_all(
    store: BucketObjects, found: dict[str, list[RemoteObject]], probe: ProbeUrl
) -> dict[str, tuple[int, int, int, float] | None]:
    """Every sub-video probed over its presigned URL, PROBE_CONCURRENCY at a time, by key."""
    gate = asyncio.Semaphore(PROBE_CONCURRENCY)

    async def one(obj: RemoteObject) -> tuple[str, tuple[int, int, int, float] | None]:
        async with gate:
            url = store.presigned_url(obj, PROBE_URL_TTL_S)
            return obj.key, await asyncio.to_thread(probe, url)

    objs = [obj for objs in found.values() for obj in objs]
    return dict(await asyncio.gather(*(one(obj) for obj in objs)))


def probe_url(url: str) -> tuple[int, int, int, float] | None:
    """(frames, width, height, fps) of the video at ``url``, read from its header and index by
    FFmpeg (HTTP range reads, not the whole file); None when it is not a readable video.

    The frame count is the container's, as OpenCV reports it for a directory's sub-videos.
    Nothing about a failure is logged or raised: FFmpeg's messages quote the (signed) URL.
    """
    try:
        container = av.open(url, timeout=(PROBE_TIMEOUT_S, PROBE_TIMEOUT_S))
    except (av.error.FFmpegError, OSError):
        return None
    try:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        frames = stream.frames
        if frames <= 0 and stream.duration and stream.time_base and fps:  # no frame count in the index
            frames = round(float(stream.duration * stream.time_base) * fps)
        return (frames, width, height, fps) if frames > 0 and width > 0 and height > 0 else None
    finally:
        container.close()
