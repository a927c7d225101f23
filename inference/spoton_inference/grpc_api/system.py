"""``SystemService``: the service's health, from the background prober's newest round."""

from __future__ import annotations

import grpc

from spoton.v1 import (
    system_pb2,
    system_pb2_grpc,
)
from spoton_inference.app import InferenceApp
from spoton_inference.grpc_api import convert


class SystemServicer(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, app: InferenceApp) -> None:
        self.app = app

    async def GetHealth(self, request: system_pb2.GetHealthRequest, context: grpc.aio.ServicerContext):
        # From the background prober's newest round: a poll costs no probe (core/health.py).
        return convert.health(await self.app.latest_health())
