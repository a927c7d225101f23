"""The whole embedded product: Triton, PostgreSQL, Redis, then inference, then facade.

The inference service counts as ready once grpc.health.v1 says SERVING, which it does only
after the models are loaded and warmed up; the facade once its ``/health`` answers 200.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from spoton_inference.auth_setup import admin_key_path, read_secret
from spoton_inference.embedded.endpoints import Listen, StackEndpoints, local_url
from spoton_inference.embedded.probes import http_ok
from spoton_inference.embedded.stack import EmbeddedStack
from spoton_inference.embedded.stackfile import DEFAULT_STACK_FILE, find_live_stack
from spoton_inference.embedded.supervisor import ChildSpec
from spoton_inference.settings import Settings

# Settings only the inference service may hold: the admin key and the token signing secret.
SERVICE_ONLY_SECRETS = frozenset({"SPOTON_ADMIN_API_KEY", "SPOTON_JWT_SECRET"})
# First start includes loading and warming both models in Triton.
SERVICE_READY_TIMEOUT_S = 300.0


async def grpc_serving(target: str, timeout_s: float = 2.0) -> bool:
    """True when the server at ``target`` reports SERVING on grpc.health.v1."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


def local_api_key(settings: Settings) -> str | None:
    """The key the local tools call the stack with: SPOTON_ADMIN_API_KEY when set, else
    SPOTON_API_KEY, else the admin key the stack's first start wrote under its data directory."""
    return settings.admin_api_key or os.environ.get("SPOTON_API_KEY") or read_secret(admin_key_path(settings.data_dir))


def inference_child(settings: Settings) -> ChildSpec:
    return ChildSpec(
        name="inference",
        argv=(sys.executable, "-m", "spoton_inference", "serve"),
        env=settings.to_env(),
        log_path=settings.data_dir / "logs" / "inference.log",
        ready=lambda: grpc_serving(settings.inference_target),
        ready_timeout_s=SERVICE_READY_TIMEOUT_S,
        stop_timeout_s=10.0,
    )


def facade_child(settings: Settings) -> ChildSpec:
    return ChildSpec(
        name="facade",
        argv=(sys.executable, "-m", "spoton_facade"),
        # The facade forwards its callers' credentials and holds none of its own.
        env={k: v for k, v in settings.to_env().items() if k not in SERVICE_ONLY_SECRETS},
        log_path=settings.data_dir / "logs" / "facade.log",
        ready=lambda: http_ok(f"{local_url(settings.facade_host, settings.facade_port)}/health"),
        ready_timeout_s=60.0,
    )


def full_stack(settings: Settings, stack_file: Path | None = None, listen: Listen | None = None) -> EmbeddedStack:
    """Everything, the gRPC API and facade where ``listen`` says (default: free ports)."""
    return EmbeddedStack(settings, children=[inference_child, facade_child], stack_file=stack_file, listen=listen)


@contextlib.asynccontextmanager
async def stack_for_run(settings: Settings, stack_file: Path = DEFAULT_STACK_FILE) -> AsyncIterator[StackEndpoints]:
    """The stack named in ``stack_file`` when one is up; else an embedded one for this run,
    on free ports unless SPOTON_GRPC_PORT / SPOTON_FACADE_PORT are set (see :meth:`Listen.for_run`)."""
    live = await find_live_stack(stack_file)
    if live is not None:
        yield live
        return
    async with full_stack(settings, listen=Listen.for_run(settings, os.environ)) as stack:
        yield stack.endpoints
