"""``SystemService``: the service's health, from the background prober's newest round."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

from spoton.v1 import (
    system_pb2,
    system_pb2_grpc,
)
from spoton_inference.grpc_api import convert
from spoton_inference.services.health import HealthReport


class SystemServicer(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, latest_health: Callable[[], Awaitable[HealthReport]]) -> None:
        """``latest_health``: the background prober's newest findings (InferenceApp.latest_health)."""
        self.latest_health = latest_health

    async def GetHealth(self, request: system_pb2.GetHealthRequest, context: grpc.aio.ServicerContext):
        # From the background prober's newest round: a poll costs no probe (services/health.py).
        return convert.health(await self.latest_health())
