"""Registering from a real S3 server (SeaweedFS, tests/support/s3_server.py): environment.json is
read from the bucket, sub-videos are probed over presigned URLs by FFmpeg, and each failure names
the object, never the credentials."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from spoton_inference.domain.environment import RemoteObject
from spoton_inference.domain.errors import NotFound, PermissionDenied
from spoton_inference.files.bucket_environment import load_bucket_environment
from spoton_inference.files.object_store import ObjectStore, S3Config


def _video(path: Path, frames: int) -> Path:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(frames):
        out.write(np.full((48, 64, 3), i * 10, np.uint8))
    out.release()
    return path


def _path_for(obj: RemoteObject) -> Path:
    return Path("/cache") / obj.bucket / f"{obj.key}@{obj.etag}"


def _store(s3_server, access_key: str = "", secret_key: str = "") -> ObjectStore:
    return ObjectStore(
        S3Config(
            endpoint_url=s3_server.url,
            region=s3_server.region,
            access_key_id=access_key or s3_server.access_key,
            secret_access_key=secret_key or s3_server.secret_key,
            outage_wait_s=2.0,
        )
    )


@pytest.fixture
def site(s3_server, tmp_path) -> tuple[str, dict[str, str]]:
    """A bucket holding the environment 'lobby' under sites/lobby: two cameras, three sub-videos."""
    bucket = s3_server.create_bucket()
    doc = {"id": "lobby", "cameras": [{"id": "c1"}, {"id": "c2"}], "map": {"metres_per_pixel": 0.1}}
    s3_server.put(bucket, "sites/lobby/environment.json", json.dumps(doc).encode())
    etags = {}
    for key, frames in (("c1/sub_video_01.mp4", 8), ("c1/sub_video_02.mp4", 5), ("c2/sub_video_01.mp4", 6)):
        full = f"sites/lobby/cameras/{key}"
        etags[full] = s3_server.put(bucket, full, _video(tmp_path / key.replace("/", "_"), frames))
    return bucket, etags


async def test_an_environment_registers_from_a_bucket_without_downloading_its_videos(s3_server, site):
    bucket, etags = site
    store = _store(s3_server)
    try:
        env = await load_bucket_environment(store, _path_for, f"s3://{bucket}/sites/lobby")
        manifest = await store.head(bucket, "sites/lobby/environment.json")
    finally:
        await store.close()
    assert env.source == f"s3://{bucket}/sites/lobby" and env.floor_map.metres_per_pixel == 0.1
    c1, c2 = env.cameras
    assert [(s.remote.key, s.num_frames) for s in c1.sub_videos] == [
        ("sites/lobby/cameras/c1/sub_video_01.mp4", 8),
        ("sites/lobby/cameras/c1/sub_video_02.mp4", 5),
    ]
    assert (c1.width, c1.height, c1.fps) == (64, 48, 10.0) and c2.sub_videos[0].num_frames == 6
    for sub in (*c1.sub_videos, *c2.sub_videos):
        assert sub.remote.etag == etags[sub.remote.key] and sub.path == _path_for(sub.remote)
    # The store fetched environment.json only; FFmpeg read the videos' headers over presigned URLs.
    assert store.stats.bytes_received == manifest.size


async def test_a_missing_manifest_or_bucket_is_not_found_naming_the_manifest(s3_server, site):
    bucket, _ = site
    store = _store(s3_server)
    try:
        with pytest.raises(NotFound, match=rf"s3://{bucket}/sites/hall/environment\.json not found"):
            await load_bucket_environment(store, _path_for, f"s3://{bucket}/sites/hall")
        with pytest.raises(NotFound, match=r"s3://no-such-bucket-x1/site/environment\.json not found"):
            await load_bucket_environment(store, _path_for, "s3://no-such-bucket-x1/site")
    finally:
        await store.close()


async def test_denied_access_names_the_key_and_never_the_credentials(s3_server, site):
    bucket, _ = site
    store = _store(s3_server, s3_server.limited_access_key, s3_server.limited_secret_key)
    try:
        with pytest.raises(PermissionDenied) as caught:
            await load_bucket_environment(store, _path_for, f"s3://{bucket}/sites/lobby")
    finally:
        await store.close()
    message = str(caught.value)
    assert f"s3://{bucket}/sites/lobby/environment.json" in message
    assert "SPOTON_S3_ACCESS_KEY_ID" in message
    assert s3_server.limited_secret_key not in message and s3_server.limited_access_key not in message
