"""The catalogue: environments, cameras, floor maps and homographies, as answered and as sent."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec

from spoton_facade.contract import NO_NUL, Count32, DefaultName, Name, NewId, NonNegative, Text
from spoton_facade.schemas.base import Point

Threshold = Annotated[float, msgspec.Meta(ge=0, le=1)]


# The service's longest camera location.
Location = Annotated[str, msgspec.Meta(max_length=500, pattern=NO_NUL)]


class Homography(msgspec.Struct):
    """``spoton.v1.Homography``."""

    image_points: list[Point]
    map_points: list[Point]
    matrix: list[float]
    reprojection_error_m: float


SourceKindName = Literal["file", "rtsp", "http", "push"]


class CameraSource(msgspec.Struct):
    """``spoton.v1.CameraSource`` as answered: never the password, only whether one is stored."""

    kind: SourceKindName
    # Without credentials.
    url: str
    username: str
    password_set: bool
    # The URL with the user name and "****" for the password, for display.
    masked_url: str


class Camera(msgspec.Struct):
    """``spoton.v1.Camera``."""

    camera_id: str
    name: str
    fps: float
    width: int
    height: int
    homography: Homography | None
    sub_videos: list[str]
    sub_video_frames: list[int]
    # "" when in no group.
    group_id: str = ""
    source: CameraSource | None = None
    # null: the server's default.
    detection_threshold: float | None = None
    location: str = ""
    enabled: bool = True


class CameraList(msgspec.Struct):
    """``spoton.v1.ListCamerasResponse``."""

    cameras: list[Camera]


class FloorMap(msgspec.Struct):
    """``spoton.v1.FloorMap``."""

    image_url: str
    metres_per_pixel: float


class EnvironmentOriginName(enum.StrEnum):
    """``spoton.v1.EnvironmentOrigin`` without its prefix; a test keeps the two in step. ``site``:
    made by a user; ``job``: made by JobService for one uploaded video. The service always says
    which (``unspecified`` only comes from one older than origins)."""

    UNSPECIFIED = "unspecified"
    SITE = "site"
    JOB = "job"


# Every origin but "unspecified", which as a filter would mean none and list every environment.
EnvironmentOriginFilter = Literal["site", "job"]


class Environment(msgspec.Struct):
    """``spoton.v1.Environment``."""

    environment_id: str
    name: str
    map: FloorMap | None
    cameras: list[Camera]
    source_dir: str
    origin: EnvironmentOriginName


class EnvironmentList(msgspec.Struct):
    """``spoton.v1.ListEnvironmentsResponse``."""

    environments: list[Environment]


class HomographyBody(msgspec.Struct, forbid_unknown_fields=True):
    """A homography to set: 4+ ``image_points`` [u, v] (pixels) with their ``map_points`` [x, y]
    (metres), or a row-major 3x3 ``matrix`` (9 values), or both (the points then measure it)."""

    image_points: list[Point] = msgspec.field(default_factory=list)
    map_points: list[Point] = msgspec.field(default_factory=list)
    matrix: list[float] = msgspec.field(default_factory=list)


class CameraSourceBody(msgspec.Struct, forbid_unknown_fields=True):
    """A camera's source. Credentials in ``url`` (``rtsp://user:pass@host/...``) are moved into
    ``username``/``password``; the password is stored and never returned. On update, an absent
    (or null) ``password`` keeps the stored one and ``""`` removes it; an absent ``kind`` keeps the kind."""

    kind: SourceKindName | None = None
    url: Text = ""
    username: Text = ""
    password: Text | None = None


class CameraBody(msgspec.Struct, forbid_unknown_fields=True):
    """A new camera; zero ``fps``/``width``/``height`` are read from its sub-videos when it has some."""

    camera_id: NewId
    name: DefaultName = ""
    fps: NonNegative = 0.0
    width: Count32 = 0
    height: Count32 = 0
    homography: HomographyBody | None = None
    # A camera group of the environment; "" for none.
    group_id: Text = ""
    # Absent: file when the camera has sub-videos, else push.
    source: CameraSourceBody | None = None
    # 0 to 1; absent: the server's default.
    detection_threshold: Threshold | None = None
    location: Location = ""
    enabled: bool = True


class EnvironmentBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/environments``."""

    environment_id: NewId
    name: DefaultName = ""
    metres_per_pixel: NonNegative = 0.0
    cameras: list[CameraBody] = msgspec.field(default_factory=list)


class EnvironmentPatchBody(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/v1/environments/{environment_id}``: absent fields stay as they are."""

    name: Name | None = None
    metres_per_pixel: NonNegative | None = None


class CameraPatchBody(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH .../cameras/{camera_id}``: absent fields stay; ``homography`` replaces the old one."""

    name: Name | None = None
    fps: Annotated[float, msgspec.Meta(gt=0)] | None = None
    width: Count32 | None = None
    height: Count32 | None = None
    homography: HomographyBody | None = None
    # Remove the homography: the camera's tracks get no map coordinates.
    clear_homography: bool = False
    # "" takes the camera out of any group.
    group_id: Text | None = None
    # Replaces the source (see CameraSourceBody for the password).
    source: CameraSourceBody | None = None
    detection_threshold: Threshold | None = None
    # Back to the server's default detection threshold.
    clear_detection_threshold: bool = False
    location: Location | None = None
    enabled: bool | None = None


class RegisterEnvironmentBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/environments:register``: a directory on the inference server, or ``s3://bucket/prefix``."""

    path: Annotated[str, msgspec.Meta(min_length=1, pattern=NO_NUL)]
