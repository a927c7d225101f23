"""``/api/v1/environments``: the catalogue of sites and their cameras (CatalogService)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from spoton_facade.client import InferenceClient
from spoton_facade.problems import LOOKUP_PROBLEMS, UPSTREAM_PROBLEMS
from spoton_facade.schemas import CameraList, Environment, EnvironmentList, from_proto


class EnvironmentController(Controller):
    """Read-only views of environments and cameras."""

    path = "/environments"
    tags = ("environments",)

    @get(summary="List environments", responses=UPSTREAM_PROBLEMS)
    async def list_environments(self, inference: NamedDependency[InferenceClient]) -> EnvironmentList:
        """CatalogService.ListEnvironments."""
        return from_proto(await inference.list_environments(), EnvironmentList)

    @get("/{environment_id:str}", summary="Get an environment", responses=LOOKUP_PROBLEMS)
    async def get_environment(
        self, environment_id: FromPath[str], inference: NamedDependency[InferenceClient]
    ) -> Environment:
        """CatalogService.GetEnvironment."""
        return from_proto(await inference.get_environment(environment_id), Environment)

    @get("/{environment_id:str}/cameras", summary="List an environment's cameras", responses=LOOKUP_PROBLEMS)
    async def list_cameras(
        self, environment_id: FromPath[str], inference: NamedDependency[InferenceClient]
    ) -> CameraList:
        """CatalogService.ListCameras."""
        return from_proto(await inference.list_cameras(environment_id), CameraList)
