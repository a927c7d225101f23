"""Environments and cameras: what a site is made of, as plain values.

Loading them from an environment directory (file reads, video probing) lives apart, in
``spoton_inference.files.environment_dir`` (and ``files.bucket_environment`` for one in an
S3-compatible bucket, ``s3://bucket/prefix``), so these types carry no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from pathlib import Path

from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.geometry import Homography
from spoton_inference.domain.source_url import mask_text

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
S3_SCHEME = "s3://"
MAX_URI_ECHO_CHARS = 200
# S3's bucket naming rules (3-63 of lower-case letters, digits, '.', '-'; alphanumeric at both ends).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# S3 keys are at most 1024 bytes; room is left for cameras/<id>/sub_video_NN.mp4 under a prefix.
MAX_PREFIX_CHARS = 900


def is_bucket_uri(path: str) -> bool:
    """Whether a registration path names object storage rather than a directory.

    >>> is_bucket_uri("s3://recordings/site-a"), is_bucket_uri("/data/site-a")
    (True, False)
    """
    return path[: len(S3_SCHEME)].lower() == S3_SCHEME


def shown_uri(uri: str) -> str:
    """``uri`` cut short for messages and logs: anything before an '@' in its authority, and
    query parameters named like secrets (a pasted presigned URL's signature), are masked.

    >>> shown_uri("s3://AKIA:secret@rec/site")
    's3://***@rec/site'
    >>> shown_uri("https://s3.example/rec/a.mp4?X-Amz-Credential=AKIA&X-Amz-Signature=5f3c")
    'https://s3.example/rec/a.mp4?X-Amz-Credential=****&X-Amz-Signature=****'
    """
    head, sep, tail = uri.partition("//")
    authority, slash, path = tail.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return mask_text(head + sep + authority + slash + path)[:MAX_URI_ECHO_CHARS]


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteObject:
    """An object in an S3-compatible bucket, as listed: its ETag tells one version from another.

    >>> RemoteObject("rec", "site/cameras/c1/sub_video_01.mp4", 1024, "9e107d9d").uri
    's3://rec/site/cameras/c1/sub_video_01.mp4'
    """

    bucket: str
    key: str
    size: int
    etag: str

    @property
    def uri(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"


@dataclasses.dataclass(frozen=True, slots=True)
class BucketSource:
    """Where an environment registered from object storage lives: ``s3://bucket/prefix``.

    >>> BucketSource("rec", "sites/lobby").uri
    's3://rec/sites/lobby'
    """

    bucket: str
    # No leading or trailing '/'; "" for the bucket's root.
    prefix: str

    @property
    def uri(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{S3_SCHEME}{self.bucket}"

    def key(self, name: str) -> str:
        """The key of ``name`` (relative to the environment) in the bucket."""
        return f"{self.prefix}/{name}" if self.prefix else name


def parse_bucket_uri(uri: str) -> BucketSource:
    """``s3://bucket/prefix`` as a BucketSource; InvalidArgument saying what is wrong.

    >>> parse_bucket_uri("s3://recordings/sites/lobby/")
    BucketSource(bucket='recordings', prefix='sites/lobby')
    """
    shown = shown_uri(uri)
    if not is_bucket_uri(uri):
        raise InvalidArgument(f"{shown!r} is not an s3:// URI: write s3://bucket/prefix")
    rest = uri[len(S3_SCHEME) :]
    bucket, _, prefix = rest.partition("/")
    if "@" in bucket or ":" in bucket:
        raise InvalidArgument(
            f"{shown!r}: an s3:// URI names a bucket and a prefix only; the endpoint and credentials "
            "come from the server's settings (SPOTON_S3_ENDPOINT_URL, SPOTON_S3_ACCESS_KEY_ID, "
            "SPOTON_S3_SECRET_ACCESS_KEY)"
        )
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidArgument(
            f"{shown!r}: {bucket[:70]!r} is not a valid bucket name (3-63 lower-case letters, digits, '.' or '-')"
        )
    prefix = prefix.strip("/")
    parts = prefix.split("/") if prefix else []
    if len(prefix) > MAX_PREFIX_CHARS or any(p in ("", ".", "..") for p in parts):
        raise InvalidArgument(
            f"{shown!r}: the prefix must be at most {MAX_PREFIX_CHARS} characters of '/'-separated names "
            "without empty, '.' or '..' parts"
        )
    if any(ord(c) < 0x20 or c == "\x7f" for c in prefix):
        raise InvalidArgument(f"{shown!r}: the prefix must not hold control characters")
    return BucketSource(bucket, prefix)


@dataclasses.dataclass(frozen=True, slots=True)
class SubVideo:
    path: Path
    num_frames: int
    # Set for a recording in object storage: ``path`` is then where the recording cache keeps
    # it locally (files/recording_cache.RecordingCache.path_for), present only once fetched.
    remote: RemoteObject | None = None

    @property
    def filename(self) -> str:
        return self.path.name


@dataclasses.dataclass(frozen=True, slots=True)
class Camera:
    camera_id: str
    name: str
    fps: float
    width: int
    height: int
    homography: Homography | None
    sub_videos: tuple[SubVideo, ...] = ()
    group_id: str | None = None
    source: CameraSource = dataclasses.field(default_factory=CameraSource)
    # None: the server's default.
    detection_threshold: float | None = None
    location: str = ""
    enabled: bool = True

    @property
    def is_pulled(self) -> bool:
        """The service pulls its frames (an RTSP/HTTP source and no recorded sub-videos)."""
        return self.source.is_live and not self.sub_videos


@dataclasses.dataclass(frozen=True, slots=True)
class CameraGroup:
    group_id: str
    name: str
    description: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class FloorMap:
    image: Path | None = None
    metres_per_pixel: float = 0.0
    # Where the facade serves the image (see Catalog); empty until published.
    image_url: str = ""


class EnvironmentOrigin(enum.StrEnum):
    """Who made an environment: a user (a site, the default) or the jobs service (one per upload)."""

    SITE = "site"
    JOB = "job"


@dataclasses.dataclass(frozen=True, slots=True)
class Environment:
    environment_id: str
    name: str
    floor_map: FloorMap
    cameras: tuple[Camera, ...]
    source_dir: Path | None = None
    groups: tuple[CameraGroup, ...] = ()
    # Jobs' environments are kept apart from sites (ListEnvironments filters on it).
    origin: EnvironmentOrigin = EnvironmentOrigin.SITE
    # Set for an environment registered from object storage (source_dir is then None).
    bucket: BucketSource | None = None

    @property
    def source(self) -> str:
        """Where it was registered from, for display: a directory, ``s3://bucket/prefix`` or ""."""
        if self.bucket is not None:
            return self.bucket.uri
        return str(self.source_dir or "")

    def camera(self, camera_id: str) -> Camera | None:
        return next((c for c in self.cameras if c.camera_id == camera_id), None)

    def group(self, group_id: str) -> CameraGroup | None:
        return next((g for g in self.groups if g.group_id == group_id), None)

    @property
    def num_batches(self) -> int:
        return max((len(c.sub_videos) for c in self.cameras), default=0)


def require_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidArgument(f"{what} must be 1-64 characters of letters, digits, '_', '.' or '-', got {value!r}")
    return value
