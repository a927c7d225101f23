"""``/api/v1/environments/{env}/cameras/{cam}/…``: test a camera's connection, take a snapshot,
read its health (CatalogService)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, QueryParameter

from spoton_facade.clients.inference import InferenceClient
from spoton_facade.problems import LOOKUP_PROBLEMS, problem_responses
from spoton_facade.schemas.base import from_proto
from spoton_facade.schemas.cameras import CameraHealth, ConnectionTest

JPEG = "image/jpeg"
# 409: the camera has no live source (test) or no frames at all (snapshot); 503: it gave none now.
CAMERA_PROBLEMS = {**problem_responses(409), **LOOKUP_PROBLEMS}


class CameraOperationsController(Controller):
    path = "/environments/{environment_id:str}/cameras/{camera_id:str}"
    tags = ("cameras",)

    @post(
        "/test-connection",
        summary="Test a camera's live source",
        description="Opens the camera's RTSP/HTTP source within the service's connect timeout and decodes one "
        "frame. A camera that is down is a 200 with `ok: false` and a `reason` (credentials masked); 409 for a "
        "camera without a live source.",
        status_code=200,
        responses=CAMERA_PROBLEMS,
    )
    async def test_connection(
        self, environment_id: FromPath[str], camera_id: FromPath[str], inference: NamedDependency[InferenceClient]
    ) -> ConnectionTest:
        """CatalogService.TestCameraConnection."""
        return from_proto(await inference.test_camera_connection(environment_id, camera_id), ConnectionTest)

    @get(
        "/snapshot",
        summary="The camera's current frame as JPEG",
        description="The newest frame of a running live pull, else one grabbed from the source, else the first "
        "frame of the first sub-video. `detections=true` draws the detector's person boxes with their scores.",
        media_type=JPEG,
        responses={
            200: ResponseSpec(bytes, description="JPEG image", media_type=JPEG, generate_examples=False),
            **CAMERA_PROBLEMS,
        },
    )
    async def snapshot(
        self,
        environment_id: FromPath[str],
        camera_id: FromPath[str],
        inference: NamedDependency[InferenceClient],
        detections: Annotated[bool, QueryParameter(description="Draw detected people")] = False,
    ) -> Response[bytes]:
        """CatalogService.GetCameraSnapshot."""
        snap = await inference.get_camera_snapshot(environment_id, camera_id, detections)
        headers = {"Cache-Control": "no-store", "X-Captured-At": snap.captured_at.ToJsonString()}
        return Response(snap.jpeg, media_type=JPEG, headers=headers)

    @get(
        "/health",
        summary="A camera's health checks and status",
        description="Checks newest first; `status` is the newest check's (unknown before the first). online: "
        "frames at 50% or more of the expected fps; degraded: connected but slower; offline: unreachable.",
        responses=LOOKUP_PROBLEMS,
    )
    async def health(
        self,
        environment_id: FromPath[str],
        camera_id: FromPath[str],
        inference: NamedDependency[InferenceClient],
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="Newest checks to return")] = 50,
    ) -> CameraHealth:
        """CatalogService.ListCameraHealth."""
        return from_proto(await inference.list_camera_health(environment_id, camera_id, limit), CameraHealth)
