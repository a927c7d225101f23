"""``spoton.v1.CameraRegistryService``: camera groups, import and export, and the summary, over
the catalogue; with the conversions between its messages and the core's records."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

from spoton.v1 import cameras_pb2, cameras_pb2_grpc
from spoton_inference.domain.camera_summary import CameraCounts, CameraSummary
from spoton_inference.domain.environment import CameraGroup, Environment
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.grpc_api.errors import unary
from spoton_inference.services.catalog import Catalog, GroupPatch

# The file formats by name, as the camera files port takes them (files/camera_io.py: FileFormat).
FORMATS = {cameras_pb2.CAMERA_FILE_FORMAT_CSV: "csv", cameras_pb2.CAMERA_FILE_FORMAT_JSON: "json"}


@dataclasses.dataclass(frozen=True, slots=True)
class CameraFile:
    """An exported camera file, as ExportCameras returns it."""

    content: bytes
    media_type: str
    filename: str


class RowError(Protocol):
    """One fault of an imported file: its row (0: the file as a whole), camera, field and why."""

    @property
    def row(self) -> int: ...

    @property
    def camera_id(self) -> str: ...

    @property
    def field(self) -> str: ...

    @property
    def message(self) -> str: ...


class CameraImport(Protocol):
    """What importing a file did: applied (every row good, no dry run), or the faults found."""

    @property
    def applied(self) -> bool: ...

    @property
    def errors(self) -> Sequence[RowError]: ...

    @property
    def created(self) -> Sequence[str]: ...

    @property
    def updated(self) -> Sequence[str]: ...


class CameraFiles(Protocol):
    """An environment's cameras as CSV or JSON files (files/camera_io.py, wired by the root)."""

    async def import_cameras(
        self, environment_id: str, content: bytes, file_format: str, *, dry_run: bool
    ) -> CameraImport: ...

    def export_cameras(self, environment: Environment, file_format: str) -> CameraFile: ...


class CameraRegistryServicer(cameras_pb2_grpc.CameraRegistryServiceServicer):
    def __init__(self, catalog: Catalog, camera_files: CameraFiles) -> None:
        self.catalog = catalog
        self.camera_files = camera_files

    @unary
    async def CreateCameraGroup(self, request, context):
        g = request.group
        group = await self.catalog.create_group(g.environment_id, CameraGroup(g.group_id, g.name, g.description))
        return self._group(g.environment_id, group)

    @unary
    async def GetCameraGroup(self, request, context):
        return self._group(request.environment_id, self.catalog.group(request.environment_id, request.group_id))

    @unary
    async def ListCameraGroups(self, request, context):
        env = self.catalog.get(request.environment_id)
        return cameras_pb2.ListCameraGroupsResponse(groups=[group(env, g) for g in env.groups])

    @unary
    async def UpdateCameraGroup(self, request, context):
        patch = GroupPatch(
            name=request.name if request.HasField("name") else None,
            description=request.description if request.HasField("description") else None,
        )
        updated = await self.catalog.update_group(request.environment_id, request.group_id, patch)
        return self._group(request.environment_id, updated)

    @unary
    async def DeleteCameraGroup(self, request, context):
        await self.catalog.delete_group(request.environment_id, request.group_id)
        return cameras_pb2.DeleteCameraGroupResponse()

    @unary
    async def ImportCameras(self, request, context):
        self.catalog.get(request.environment_id)  # NOT_FOUND before the format is looked at
        result = await self.camera_files.import_cameras(
            request.environment_id, request.content, _format(request.format), dry_run=request.dry_run
        )
        return cameras_pb2.ImportCamerasResponse(
            applied=result.applied,
            errors=[
                cameras_pb2.ImportRowError(row=e.row, camera_id=e.camera_id, field=e.field, message=e.message)
                for e in result.errors
            ],
            created_camera_ids=result.created,
            updated_camera_ids=result.updated,
        )

    @unary
    async def ExportCameras(self, request, context):
        env = self.catalog.get(request.environment_id)
        exported = self.camera_files.export_cameras(env, _format(request.format))
        return cameras_pb2.ExportCamerasResponse(
            content=exported.content, media_type=exported.media_type, filename=exported.filename
        )

    @unary
    async def GetCameraSummary(self, request, context):
        return summary(await self.catalog.summary())

    def _group(self, environment_id: str, g: CameraGroup) -> cameras_pb2.CameraGroup:
        return group(self.catalog.get(environment_id), g)


def _format(value: int) -> str:
    if value not in FORMATS:
        raise InvalidArgument("format is required: CAMERA_FILE_FORMAT_CSV or CAMERA_FILE_FORMAT_JSON")
    return FORMATS[value]


def group(env: Environment, g: CameraGroup) -> cameras_pb2.CameraGroup:
    return cameras_pb2.CameraGroup(
        environment_id=env.environment_id,
        group_id=g.group_id,
        name=g.name,
        description=g.description,
        camera_ids=[c.camera_id for c in env.cameras if c.group_id == g.group_id],
    )


def counts(c: CameraCounts) -> cameras_pb2.CameraCounts:
    return cameras_pb2.CameraCounts(
        total=c.total,
        enabled=c.enabled,
        disabled=c.disabled,
        **{f"source_{kind}": n for kind, n in c.by_source.items()},
        **c.by_status,
    )


def summary(s: CameraSummary) -> cameras_pb2.CameraSummary:
    return cameras_pb2.CameraSummary(
        counts=counts(s.counts),
        environments=[
            cameras_pb2.EnvironmentCameraCounts(
                environment_id=e.environment_id,
                name=e.name,
                counts=counts(e.counts),
                groups=[
                    cameras_pb2.GroupCameraCounts(group_id=g.group_id, name=g.name, counts=counts(g.counts))
                    for g in e.groups
                ],
            )
            for e in s.environments
        ],
    )
