"""``spoton.v1.CameraRegistryService``: camera groups, import and export, and the summary, over
the catalogue; with the conversions between its messages and the core's records."""

from __future__ import annotations

from spoton.v1 import cameras_pb2, cameras_pb2_grpc
from spoton_inference.app import InferenceApp
from spoton_inference.core import camera_io
from spoton_inference.core.camera_io import FileFormat
from spoton_inference.core.catalog import GroupPatch
from spoton_inference.domain.camera_summary import CameraCounts, CameraSummary
from spoton_inference.domain.environment import CameraGroup, Environment
from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.grpc_api.errors import unary

FORMATS = {cameras_pb2.CAMERA_FILE_FORMAT_CSV: FileFormat.CSV, cameras_pb2.CAMERA_FILE_FORMAT_JSON: FileFormat.JSON}


class CameraRegistryServicer(cameras_pb2_grpc.CameraRegistryServiceServicer):
    def __init__(self, app: InferenceApp) -> None:
        self.app = app

    @unary
    async def CreateCameraGroup(self, request, context):
        g = request.group
        group = await self.app.catalog.create_group(g.environment_id, CameraGroup(g.group_id, g.name, g.description))
        return self._group(g.environment_id, group)

    @unary
    async def GetCameraGroup(self, request, context):
        return self._group(request.environment_id, self.app.catalog.group(request.environment_id, request.group_id))

    @unary
    async def ListCameraGroups(self, request, context):
        env = self.app.catalog.get(request.environment_id)
        return cameras_pb2.ListCameraGroupsResponse(groups=[group(env, g) for g in env.groups])

    @unary
    async def UpdateCameraGroup(self, request, context):
        patch = GroupPatch(
            name=request.name if request.HasField("name") else None,
            description=request.description if request.HasField("description") else None,
        )
        updated = await self.app.catalog.update_group(request.environment_id, request.group_id, patch)
        return self._group(request.environment_id, updated)

    @unary
    async def DeleteCameraGroup(self, request, context):
        await self.app.catalog.delete_group(request.environment_id, request.group_id)
        return cameras_pb2.DeleteCameraGroupResponse()

    @unary
    async def ImportCameras(self, request, context):
        self.app.catalog.get(request.environment_id)  # NOT_FOUND before the format is looked at
        result = await camera_io.import_cameras(
            self.app.catalog, request.environment_id, request.content, _format(request.format), dry_run=request.dry_run
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
        env = self.app.catalog.get(request.environment_id)
        file_format = _format(request.format)
        return cameras_pb2.ExportCamerasResponse(
            content=camera_io.export_cameras(env, file_format),
            media_type=camera_io.MEDIA_TYPES[file_format],
            filename=camera_io.export_filename(env.environment_id, file_format),
        )

    @unary
    async def GetCameraSummary(self, request, context):
        return summary(await self.app.catalog.summary())

    def _group(self, environment_id: str, g: CameraGroup) -> cameras_pb2.CameraGroup:
        return group(self.app.catalog.get(environment_id), g)


def _format(value: int) -> FileFormat:
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
