"""The REST contract of camera groups, camera import/export and the camera summary
(``spoton.v1.CameraRegistryService``); field names follow cameras.proto."""

from __future__ import annotations

import msgspec

from spoton_facade.contract import DefaultName, Name, NewId, Text


class CameraGroup(msgspec.Struct):
    """``spoton.v1.CameraGroup``; ``camera_ids`` are the group's cameras."""

    environment_id: str
    group_id: str
    name: str
    description: str
    camera_ids: list[str]


class CameraGroupList(msgspec.Struct):
    """``spoton.v1.ListCameraGroupsResponse``."""

    groups: list[CameraGroup]


class CameraGroupBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST .../camera-groups``: the name defaults to the id."""

    group_id: NewId
    name: DefaultName = ""
    description: Text = ""


class CameraGroupPatchBody(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH .../camera-groups/{group_id}``: absent fields stay as they are."""

    name: Name | None = None
    description: Text | None = None


class ImportRowError(msgspec.Struct):
    """One problem in an import file; ``row`` 0 is the file as a whole, 1 its first camera."""

    row: int
    camera_id: str
    field: str
    message: str


class ImportReport(msgspec.Struct):
    """``spoton.v1.ImportCamerasResponse`` of an import without errors (applied unless a dry run)."""

    applied: bool
    errors: list[ImportRowError]
    created_camera_ids: list[str]
    updated_camera_ids: list[str]


class CameraCounts(msgspec.Struct):
    """``spoton.v1.CameraCounts``: by enabled flag, source kind and latest health status."""

    total: int
    enabled: int
    disabled: int
    source_file: int
    source_rtsp: int
    source_http: int
    source_push: int
    online: int
    offline: int
    degraded: int
    unknown: int


class GroupCameraCounts(msgspec.Struct):
    """A group's counts; ``group_id`` "" holds the cameras in no group."""

    group_id: str
    name: str
    counts: CameraCounts


class EnvironmentCameraCounts(msgspec.Struct):
    environment_id: str
    name: str
    counts: CameraCounts
    groups: list[GroupCameraCounts]


class CameraSummary(msgspec.Struct):
    """``spoton.v1.CameraSummary``: over every environment, then per environment and group."""

    counts: CameraCounts
    environments: list[EnvironmentCameraCounts]
