"""``spoton serve``: the embedded stack in the foreground, with the demo registered."""

from __future__ import annotations

import asyncio
from pathlib import Path

from spoton_client.client import SpotOnClient
from spoton_client.demo import ensure_demo_environment
from spoton_inference.embedded.stack import cancel_on_signals
from spoton_inference.embedded.stackfile import DEFAULT_STACK_FILE
from spoton_inference.launch import full_stack
from spoton_inference.settings import Settings


async def serve(demo_env_dir: Path) -> None:
    env_dir = ensure_demo_environment(demo_env_dir)
    with cancel_on_signals():
        try:
            async with full_stack(Settings.from_env(), stack_file=DEFAULT_STACK_FILE) as stack:
                async with SpotOnClient(stack.endpoints.grpc_target) as client:
                    env = await client.register_environment(env_dir)
                e = stack.endpoints
                print(
                    f"SpotOn is up (endpoints in {DEFAULT_STACK_FILE}):\n"
                    f"  dashboard  {e.facade_url}/\n  API docs   {e.facade_url}/schema\n"
                    f"  gRPC       {e.grpc_target}\n  Triton     {e.triton_grpc_url} (HTTP {e.triton_http_url})\n"
                    f"  PostgreSQL {e.postgres_dsn}\n  Redis      {e.redis_url}\n"
                    f"  demo environment {env.environment_id!r} registered; Ctrl-C stops everything.",
                    flush=True,
                )
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            print("stopped.")
