"""Loading an environment from a bucket: the manifest and layout of a directory, sub-videos probed
in place (FFmpeg over a URL) and carrying their objects. The store here serves local files (its
"presigned URL" is the file's path), so the probe is real; tests/integration covers a real S3."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from spoton_inference.domain.environment import BucketSource, RemoteObject
from spoton_inference.domain.errors import InvalidArgument, NotFound, PermissionDenied
from spoton_inference.files.bucket_environment import load_bucket_environment, probe_url

H = {"image_points": [[0, 360], [640, 360], [640, 0], [0, 0]], "map_points": [[0, 0], [8, 0], [8, 6], [0, 6]]}
CACHE = Path("/cache")


def _video(path: Path, frames: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(frames):
        out.write(np.full((48, 64, 3), i * 10, np.uint8))
    out.release()
    return path


class FakeBucket:
    """Objects of one bucket from local files; ``denied`` keys answer as S3 refusing them."""

    def __init__(self, bucket: str, root: Path) -> None:
        self.bucket, self.root = bucket, root
        self.denied: set[str] = set()
        self.urls: list[str] = []

    def _obj(self, path: Path) -> RemoteObject:
        key = path.relative_to(self.root).as_posix()
        return RemoteObject(self.bucket, key, path.stat().st_size, hashlib.md5(path.read_bytes()).hexdigest())

    async def list(self, bucket: str, prefix: str) -> list[RemoteObject]:
        assert bucket == self.bucket
        return sorted(
            (
                self._obj(p)
                for p in self.root.rglob("*")
                if p.is_file() and p.relative_to(self.root).as_posix().startswith(prefix)
            ),
            key=lambda o: o.key,
        )

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        if key in self.denied:
            raise PermissionDenied(f"access to s3://{bucket}/{key} was refused (AccessDenied)")
        path = self.root / key
        if bucket != self.bucket or not path.is_file():
            raise NotFound(f"s3://{bucket}/{key} does not exist (NoSuchKey)")
        return path.read_bytes()[:max_bytes]

    def presigned_url(self, obj: RemoteObject, expires_s: int) -> str:
        self.urls.append(obj.key)
        return str(self.root / obj.key)


def _path_for(obj: RemoteObject) -> Path:
    return CACHE / obj.bucket / f"{obj.key}@{obj.etag}"


@pytest.fixture
def bucket(tmp_path) -> FakeBucket:
    return FakeBucket("rec", tmp_path)


def _manifest(root: Path, prefix: str, doc: object) -> None:
    (root / prefix).mkdir(parents=True, exist_ok=True)
    (root / prefix / "environment.json").write_text(json.dumps(doc))


async def test_sub_videos_are_probed_in_place_in_batch_order_and_carry_their_objects(bucket, tmp_path):
    doc = {"id": "lobby", "name": "Lobby", "cameras": [{"id": "c1", "homography": H}, {"id": "c2", "fps": 5}]}
    doc["map"] = {"metres_per_pixel": 0.05, "image": "plan.png"}
    _manifest(tmp_path, "sites/lobby", doc)
    for n, frames in ((1, 4), (2, 6), (10, 3)):  # 10 sorts after 2 by number, not by name
        _video(tmp_path / f"sites/lobby/cameras/c1/sub_video_{n:02d}.mp4", frames)
    _video(tmp_path / "sites/lobby/cameras/c2/sub_video_01.mp4", 5)
    # Not sub-videos of a listed camera: ignored, never probed.
    _video(tmp_path / "sites/lobby/cameras/c3/sub_video_01.mp4", 2)
    _video(tmp_path / "sites/lobby/cameras/c1/extra/sub_video_01.mp4", 2)
    (tmp_path / "sites/lobby/cameras/c1/notes.txt").write_text("x")

    env = await load_bucket_environment(bucket, _path_for, "s3://rec/sites/lobby/")

    assert env.bucket == BucketSource("rec", "sites/lobby") and env.source == "s3://rec/sites/lobby"
    assert env.source_dir is None and env.name == "Lobby" and env.num_batches == 3
    c1, c2 = env.cameras
    assert [s.remote.key for s in c1.sub_videos] == [
        f"sites/lobby/cameras/c1/sub_video_{n:02d}.mp4" for n in (1, 2, 10)
    ]
    assert [s.num_frames for s in c1.sub_videos] == [4, 6, 3]
    assert (c1.width, c1.height, c1.fps) == (64, 48, 10.0) and c1.homography is not None
    assert c2.fps == 5.0  # the manifest's own value wins over the probe's
    sub = c1.sub_videos[0]
    local = tmp_path / sub.remote.key
    assert sub.remote == RemoteObject(
        "rec", sub.remote.key, local.stat().st_size, hashlib.md5(local.read_bytes()).hexdigest()
    )
    assert sub.path == _path_for(sub.remote)  # where the recording cache will keep it
    # The floor-plan image is not fetched; its scale is kept.
    assert env.floor_map.image is None and env.floor_map.metres_per_pixel == 0.05
    assert sorted(bucket.urls) == sorted(s.remote.key for c in env.cameras for s in c.sub_videos)


async def test_a_missing_environment_json_is_not_found_naming_its_uri(bucket, tmp_path):
    _video(tmp_path / "site/cameras/c1/sub_video_01.mp4", 3)
    with pytest.raises(NotFound, match=r"s3://rec/site/environment\.json not found"):
        await load_bucket_environment(bucket, _path_for, "s3://rec/site")
    with pytest.raises(NotFound, match=r"s3://other/site/environment\.json not found"):
        await load_bucket_environment(bucket, _path_for, "s3://other/site")


async def test_denied_access_names_the_key(bucket, tmp_path):
    _manifest(tmp_path, "site", {"id": "s", "cameras": [{"id": "c1", "fps": 10}]})
    bucket.denied.add("site/environment.json")
    with pytest.raises(PermissionDenied, match=r"s3://rec/site/environment\.json"):
        await load_bucket_environment(bucket, _path_for, "s3://rec/site")


async def test_a_camera_without_sub_videos_has_none(bucket, tmp_path):
    _manifest(tmp_path, "site", {"id": "s", "cameras": [{"id": "c1", "fps": 10}]})
    env = await load_bucket_environment(bucket, _path_for, "s3://rec/site")
    assert env.num_batches == 0  # the catalogue refuses it, naming the URI


async def test_an_object_that_is_no_video_is_refused_naming_its_uri(bucket, tmp_path):
    _manifest(tmp_path, "site", {"id": "s", "cameras": [{"id": "c1", "fps": 10}]})
    bad = tmp_path / "site/cameras/c1/sub_video_01.mp4"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a video at all")
    with pytest.raises(
        InvalidArgument, match=r"camera 'c1': s3://rec/site/cameras/c1/sub_video_01\.mp4 is not a readable video"
    ):
        await load_bucket_environment(bucket, _path_for, "s3://rec/site")


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b"{not json", r"s3://rec/site/environment\.json is not valid JSON"),
        (b"[]", r"s3://rec/site/environment\.json must hold a JSON object"),
        (json.dumps({"id": "s", "cameras": []}).encode(), r"'cameras' must be a non-empty list"),
    ],
)
async def test_a_bad_manifest_is_refused_naming_its_uri(bucket, tmp_path, manifest, message):
    (tmp_path / "site").mkdir()
    (tmp_path / "site/environment.json").write_bytes(manifest)
    with pytest.raises(InvalidArgument, match=message):
        await load_bucket_environment(bucket, _path_for, "s3://rec/site")


async def test_a_bad_uri_is_refused_before_any_request(bucket):
    with pytest.raises(InvalidArgument, match="not a valid bucket name"):
        await load_bucket_environment(bucket, _path_for, "s3://Bad_Bucket/site")
    assert bucket.urls == []


def test_probe_url_reads_frames_size_and_rate(tmp_path):
    assert probe_url(str(_video(tmp_path / "a.mp4", 7))) == (7, 64, 48, 10.0)
    (tmp_path / "b.mp4").write_bytes(b"junk")
    assert probe_url(str(tmp_path / "b.mp4")) is None
    assert probe_url(str(tmp_path / "missing.mp4")) is None
