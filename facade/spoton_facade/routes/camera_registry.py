"""Camera groups, camera import and export, and the camera summary (CameraRegistryService).

``/api/v1/environments/{environment_id}/camera-groups`` and ``.../cameras/import|export`` sit
beside the camera routes of :mod:`spoton_facade.routes.environments`; ``/api/v1/cameras/summary``
counts over every environment.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State, UploadFile
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, JSONBody, QueryParameter

from spoton.v1 import cameras_pb2
from spoton_facade.clients.camera_registry import CameraRegistryClient
from spoton_facade.clients.inference import request_metadata
from spoton_facade.convert import enum_number, message_to_json
from spoton_facade.problems import LOOKUP_PROBLEMS, UPSTREAM_PROBLEMS, problem_responses
from spoton_facade.schemas.base import from_proto
from spoton_facade.schemas.camera_registry import (
    CameraGroup,
    CameraGroupBody,
    CameraGroupList,
    CameraGroupPatchBody,
    CameraSummary,
    ImportReport,
)

WRITE_PROBLEMS = {**problem_responses(404, 409), **UPSTREAM_PROBLEMS}
IMPORT_PROBLEMS = {**problem_responses(404, 415, 422), **UPSTREAM_PROBLEMS}
GROUP = "/{environment_id:str}/camera-groups/{group_id:str}"
FileFormat = Literal["csv", "json"]
MEDIA_TYPES = {"text/csv": "csv", "application/json": "json"}
FILE_FIELD = "file"

Format = Annotated[
    FileFormat | None,
    QueryParameter(name="format", description="csv or json; by default from the body's (or file part's) type"),
]


def _provide_cameras(state: State, request: Request[Any, Any, Any]) -> CameraRegistryClient:
    return CameraRegistryClient(state.inference_channel, request_metadata(request))


@dataclasses.dataclass
class _ImportOperation(Operation):
    """The import reads its body itself (raw CSV/JSON or a multipart file), so it is declared here."""

    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING)
        file = Schema(type=OpenAPIType.OBJECT, required=[FILE_FIELD], properties={FILE_FIELD: text})
        self.request_body = RequestBody(
            required=True,
            description="The file (columns on `ImportCamerasRequest` in cameras.proto), as the body or "
            "as the `file` part of a form.",
            content={
                "text/csv": OpenAPIMediaType(schema=text),
                "application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT)),
                "multipart/form-data": OpenAPIMediaType(schema=file),
            },
        )


@dataclasses.dataclass
class _CsvOrJsonExport(Operation):
    """The export's 200 is CSV or JSON, as asked; a ResponseSpec documents one media type."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.content["application/json"] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))


class CameraRegistryController(Controller):
    path = "/environments"
    tags = ("cameras",)
    dependencies = {"cameras": Provide(_provide_cameras, sync_to_thread=False)}  # noqa: RUF012

    @get("/{environment_id:str}/camera-groups", summary="List camera groups", responses=LOOKUP_PROBLEMS)
    async def list_groups(
        self, environment_id: FromPath[str], cameras: NamedDependency[CameraRegistryClient]
    ) -> CameraGroupList:
        """CameraRegistryService.ListCameraGroups."""
        return from_proto(await cameras.list_groups(environment_id), CameraGroupList)

    @post(
        "/{environment_id:str}/camera-groups",
        summary="Create a camera group",
        description="409 when the group id is taken in the environment.",
        status_code=201,
        responses=WRITE_PROBLEMS,
    )
    async def create_group(
        self,
        environment_id: FromPath[str],
        data: JSONBody[CameraGroupBody],
        cameras: NamedDependency[CameraRegistryClient],
    ) -> CameraGroup:
        """CameraRegistryService.CreateCameraGroup."""
        group = cameras_pb2.CameraGroup(
            environment_id=environment_id, group_id=data.group_id, name=data.name, description=data.description
        )
        return from_proto(await cameras.create_group(group), CameraGroup)

    @get(GROUP, summary="Get a camera group", responses=LOOKUP_PROBLEMS)
    async def get_group(
        self, environment_id: FromPath[str], group_id: FromPath[str], cameras: NamedDependency[CameraRegistryClient]
    ) -> CameraGroup:
        """CameraRegistryService.GetCameraGroup."""
        return from_proto(await cameras.get_group(environment_id, group_id), CameraGroup)

    @patch(GROUP, summary="Update a camera group", responses=WRITE_PROBLEMS)
    async def update_group(
        self,
        environment_id: FromPath[str],
        group_id: FromPath[str],
        data: JSONBody[CameraGroupPatchBody],
        cameras: NamedDependency[CameraRegistryClient],
    ) -> CameraGroup:
        """CameraRegistryService.UpdateCameraGroup: only the fields in the body change."""
        request = cameras_pb2.UpdateCameraGroupRequest(
            environment_id=environment_id, group_id=group_id, name=data.name, description=data.description
        )
        return from_proto(await cameras.update_group(request), CameraGroup)

    @delete(
        GROUP,
        summary="Delete a camera group",
        description="Its cameras stay, in no group.",
        responses=WRITE_PROBLEMS,
    )
    async def delete_group(
        self, environment_id: FromPath[str], group_id: FromPath[str], cameras: NamedDependency[CameraRegistryClient]
    ) -> None:
        """CameraRegistryService.DeleteCameraGroup."""
        await cameras.delete_group(environment_id, group_id)

    @post(
        "/{environment_id:str}/cameras/import",
        summary="Import cameras from CSV or JSON",
        description="Creates or updates (by camera_id) the file's cameras. Every row is validated first: "
        "a file with any error applies nothing and is answered 422, with each error (row, camera_id, "
        "field, message) in the problem's `errors`. `dry_run=true` validates and reports only. Passwords "
        "are read, never returned; an empty or absent password keeps the stored one.",
        status_code=200,
        responses=IMPORT_PROBLEMS,
        operation_class=_ImportOperation,
    )
    async def import_cameras(
        self,
        environment_id: FromPath[str],
        request: Request[Any, Any, Any],
        cameras: NamedDependency[CameraRegistryClient],
        file_format: Format = None,
        dry_run: Annotated[bool, QueryParameter(description="Validate only; change nothing")] = False,
    ) -> ImportReport:
        """CameraRegistryService.ImportCameras."""
        content, part_type, filename = await _read_file(request)
        chosen = file_format or MEDIA_TYPES.get(part_type) or filename.rpartition(".")[2].lower()
        if chosen not in ("csv", "json"):
            raise HTTPException(
                status_code=415, detail="say which format the file is: ?format=csv or ?format=json (or its type)"
            )
        report = await cameras.import_cameras(
            cameras_pb2.ImportCamerasRequest(
                environment_id=environment_id,
                content=content,
                format=enum_number(cameras_pb2.CameraFileFormat.DESCRIPTOR, chosen),
                dry_run=dry_run,
            )
        )
        if report.errors:
            raise ValidationException(
                detail=f"{len(report.errors)} problem(s) in the file; nothing was imported",
                extra=[message_to_json(e) for e in report.errors],
                status_code=422,
            )
        return from_proto(report, ImportReport)

    @get(
        "/{environment_id:str}/cameras/export",
        summary="Export cameras as CSV or JSON",
        description="The environment's cameras in the import format, as an attachment. Never holds a password "
        "(`password_set` says whether one is stored).",
        responses={
            200: ResponseSpec(str, description="The file", media_type="text/csv", generate_examples=False),
            **LOOKUP_PROBLEMS,
        },
        operation_class=_CsvOrJsonExport,
    )
    async def export_cameras(
        self,
        environment_id: FromPath[str],
        cameras: NamedDependency[CameraRegistryClient],
        file_format: Annotated[FileFormat, QueryParameter(name="format", description="csv or json")] = "csv",
    ) -> Response[bytes]:
        """CameraRegistryService.ExportCameras."""
        number = enum_number(cameras_pb2.CameraFileFormat.DESCRIPTOR, file_format)
        exported = await cameras.export_cameras(environment_id, number)
        return Response(
            exported.content,
            media_type=exported.media_type,
            headers={"Content-Disposition": f'attachment; filename="{exported.filename}"'},
        )


class CameraSummaryController(Controller):
    path = "/cameras"
    tags = ("cameras",)
    dependencies = {"cameras": Provide(_provide_cameras, sync_to_thread=False)}  # noqa: RUF012

    @get(
        "/summary",
        summary="Camera counts",
        description="Over every environment, then per environment and group: enabled, source kind and each "
        "camera's latest health status (unknown when never checked).",
        responses=UPSTREAM_PROBLEMS,
    )
    async def summary(self, cameras: NamedDependency[CameraRegistryClient]) -> CameraSummary:
        """CameraRegistryService.GetCameraSummary."""
        return from_proto(await cameras.get_summary(), CameraSummary)


async def _read_file(request: Request[Any, Any, Any]) -> tuple[bytes, str, str]:
    """(content, its media type, its file name) from a raw body or a form's ``file`` part."""
    media_type, _ = request.content_type
    if media_type != "multipart/form-data":
        return await request.body(), media_type, ""
    form = await request.form()
    upload = form.get(FILE_FIELD)
    if isinstance(upload, str):  # a plain field, as forms send text without a file name
        return upload.encode(), "", ""
    if not isinstance(upload, UploadFile):
        raise HTTPException(status_code=400, detail="send the file as the form's `file` part")
    return await upload.read(), upload.content_type, upload.filename or ""
