"""Environments and cameras: what a site is made of, as plain values.

Loading them from an environment directory (file reads, video probing) lives apart, in
``spoton_inference.files.environment_dir``, so these types carry no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from pathlib import Path

from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.geometry import Homography

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclasses.dataclass(frozen=True, slots=True)
class SubVideo:
    path: Path
    num_frames: int

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
