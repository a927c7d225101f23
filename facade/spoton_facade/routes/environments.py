"""``/api/v1/environments``: the catalogue of sites and their cameras (CatalogService)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from spoton.v1 import catalog_pb2
from spoton_facade import to_proto
from spoton_facade.clients.inference import InferenceClient
from spoton_facade.convert import enum_number
from spoton_facade.problems import LOOKUP_PROBLEMS, UPSTREAM_PROBLEMS, problem_responses
from spoton_facade.schemas.base import from_proto
from spoton_facade.schemas.catalog import (
    Camera,
    CameraBody,
    CameraList,
    CameraPatchBody,
    Environment,
    EnvironmentBody,
    EnvironmentList,
    EnvironmentOriginFilter,
    EnvironmentPatchBody,
    RegisterEnvironmentBody,
)

# A write can also clash with what exists (409: ALREADY_EXISTS, or in use by a task).
WRITE_PROBLEMS = {**problem_responses(404, 409), **UPSTREAM_PROBLEMS}
CAMERA = "/{environment_id:str}/cameras/{camera_id:str}"


class EnvironmentController(Controller):
    """Environments and their cameras: list, get, create, update, delete, register a directory."""

    path = "/environments"
    tags = ("environments",)

    @get(summary="List environments", responses=UPSTREAM_PROBLEMS)
    async def list_environments(
        self,
        inference: NamedDependency[InferenceClient],
        origin: Annotated[
            EnvironmentOriginFilter | None,
            QueryParameter(description="Only sites (`site`) or only jobs' environments (`job`); absent: all"),
        ] = None,
    ) -> EnvironmentList:
        """CatalogService.ListEnvironments."""
        number = enum_number(catalog_pb2.EnvironmentOrigin.DESCRIPTOR, origin) if origin else 0
        return from_proto(await inference.list_environments(number), EnvironmentList)

    @post(
        summary="Create an environment",
        description="Homographies are validated (4+ point pairs, not collinear, non-singular); each "
        "camera's `homography.reprojection_error_m` in the answer says how well the fit holds. "
        "409 when the id is taken.",
        status_code=201,
        responses=WRITE_PROBLEMS,
    )
    async def create_environment(
        self, data: JSONBody[EnvironmentBody], inference: NamedDependency[InferenceClient]
    ) -> Environment:
        """CatalogService.CreateEnvironment."""
        return from_proto(await inference.create_environment(to_proto.environment(data)), Environment)

    # A custom method (AIP-136): ':' cannot occur in an environment id, so it never shadows one.
    @post(
        "/:register",
        summary="Register an environment from a directory or a bucket",
        description="Reads `environment.json` and `cameras/<id>/sub_video_NN.mp4` from a directory on "
        "the inference server, or from `s3://bucket/prefix` in the object storage the server is set up for "
        "(SPOTON_S3_*; sub-videos are probed in place, fetched by tasks); replaces an environment with the same id.",
        status_code=200,
        responses=LOOKUP_PROBLEMS,
    )
    async def register_environment(
        self, data: JSONBody[RegisterEnvironmentBody], inference: NamedDependency[InferenceClient]
    ) -> Environment:
        """CatalogService.RegisterEnvironmentFromDirectory."""
        return from_proto(await inference.register_environment(data.path), Environment)

    @get("/{environment_id:str}", summary="Get an environment", responses=LOOKUP_PROBLEMS)
    async def get_environment(
        self, environment_id: FromPath[str], inference: NamedDependency[InferenceClient]
    ) -> Environment:
        """CatalogService.GetEnvironment."""
        return from_proto(await inference.get_environment(environment_id), Environment)

    @patch("/{environment_id:str}", summary="Update an environment", responses=WRITE_PROBLEMS)
    async def update_environment(
        self,
        environment_id: FromPath[str],
        data: JSONBody[EnvironmentPatchBody],
        inference: NamedDependency[InferenceClient],
    ) -> Environment:
        """CatalogService.UpdateEnvironment: only the fields in the body change."""
        request = to_proto.environment_update(environment_id, data)
        return from_proto(await inference.update_environment(request), Environment)

    @delete(
        "/{environment_id:str}",
        summary="Delete an environment",
        description="409 while a task over the environment is unfinished.",
        responses=WRITE_PROBLEMS,
    )
    async def delete_environment(
        self, environment_id: FromPath[str], inference: NamedDependency[InferenceClient]
    ) -> None:
        """CatalogService.DeleteEnvironment."""
        await inference.delete_environment(environment_id)

    @get("/{environment_id:str}/cameras", summary="List an environment's cameras", responses=LOOKUP_PROBLEMS)
    async def list_cameras(
        self,
        environment_id: FromPath[str],
        inference: NamedDependency[InferenceClient],
        group_id: Annotated[str, QueryParameter(description="Only this camera group's cameras")] = "",
        enabled: Annotated[bool | None, QueryParameter(description="Only enabled (true) or disabled (false)")] = None,
    ) -> CameraList:
        """CatalogService.ListCameras."""
        return from_proto(await inference.list_cameras(environment_id, group_id, enabled), CameraList)

    @post(
        "/{environment_id:str}/cameras",
        summary="Add a camera",
        description="Its sub-videos are found under the environment's directory when it has one. "
        "409 when the camera id is taken.",
        status_code=201,
        responses=WRITE_PROBLEMS,
    )
    async def create_camera(
        self,
        environment_id: FromPath[str],
        data: JSONBody[CameraBody],
        inference: NamedDependency[InferenceClient],
    ) -> Camera:
        """CatalogService.CreateCamera."""
        return from_proto(await inference.create_camera(environment_id, to_proto.camera(data)), Camera)

    @get(CAMERA, summary="Get a camera", responses=LOOKUP_PROBLEMS)
    async def get_camera(
        self, environment_id: FromPath[str], camera_id: FromPath[str], inference: NamedDependency[InferenceClient]
    ) -> Camera:
        """CatalogService.GetCamera."""
        return from_proto(await inference.get_camera(environment_id, camera_id), Camera)

    @patch(CAMERA, summary="Update a camera", responses=WRITE_PROBLEMS)
    async def update_camera(
        self,
        environment_id: FromPath[str],
        camera_id: FromPath[str],
        data: JSONBody[CameraPatchBody],
        inference: NamedDependency[InferenceClient],
    ) -> Camera:
        """CatalogService.UpdateCamera: only the fields in the body change."""
        request = to_proto.camera_update(environment_id, camera_id, data)
        return from_proto(await inference.update_camera(request), Camera)

    @delete(
        CAMERA,
        summary="Delete a camera",
        description="409 while an unfinished task uses the camera.",
        responses=WRITE_PROBLEMS,
    )
    async def delete_camera(
        self, environment_id: FromPath[str], camera_id: FromPath[str], inference: NamedDependency[InferenceClient]
    ) -> None:
        """CatalogService.DeleteCamera."""
        await inference.delete_camera(environment_id, camera_id)
