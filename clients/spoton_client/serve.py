"""``spoton serve``: the embedded stack in the foreground, with the demo registered.

The facade and the gRPC API listen on SPOTON_BIND_HOST (default 127.0.0.1) at
SPOTON_FACADE_PORT (default 8080) and SPOTON_GRPC_PORT (default 50051); a port that is
taken stops it before anything starts, with a one-line message naming the setting.
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

from spoton_client.auth import how_to_authenticate
from spoton_client.client import SpotOnClient
from spoton_client.demo import DEFAULT_DEMO_DIR, ensure_demo_environment
from spoton_inference.domain.source_url import mask_text
from spoton_inference.embedded.endpoints import Listen
from spoton_inference.embedded.ports import PortUnavailable
from spoton_inference.embedded.stack import cancel_on_signals
from spoton_inference.embedded.stackfile import DEFAULT_STACK_FILE
from spoton_inference.launch import full_stack, local_api_key
from spoton_inference.settings import Settings


async def serve(env_dir: Path | None = None, stack_file: Path | None = None) -> None:
    """Start everything, register ``env_dir`` (default: the demo, generated if missing), and
    wait for SIGINT/SIGTERM; the stack file exists exactly while the stack is healthy.

    A component that dies is restarted (logged on the console); one that spends its restart
    budget stops the whole stack, and this exits with status 1 saying which and why. A port
    that cannot be listened on exits with status 1 and the message, before anything starts."""
    stack_file = stack_file or DEFAULT_STACK_FILE
    settings = Settings.from_env()
    try:
        stack = full_stack(settings, stack_file=stack_file, listen=Listen.configured(settings))
    except PortUnavailable as exc:
        raise SystemExit(f"spoton serve: {exc}") from None
    env_dir = env_dir or ensure_demo_environment(DEFAULT_DEMO_DIR / "env")
    with cancel_on_signals():
        try:
            async with stack:
                async with SpotOnClient(stack.endpoints.grpc_target, api_key=local_api_key(settings)) as client:
                    env = await client.register_environment(env_dir)
                e = stack.endpoints
                print(
                    f"SpotOn is up (endpoints in {stack_file}):\n"
                    f"  dashboard  {e.facade_url}/\n  API docs   {e.facade_url}/schema\n"
                    f"  gRPC       {e.grpc_target}\n  Triton     {e.triton_grpc_url} (HTTP {e.triton_http_url})\n"
                    # Masked: the embedded stack's passwords stay in <data_dir>/secrets/.
                    f"  PostgreSQL {mask_text(e.postgres_dsn)}\n  Redis      {mask_text(e.redis_url)}\n"
                    f"{_exposure(settings)}"
                    f"  {how_to_authenticate(settings.data_dir)}\n"
                    f"  environment {env.environment_id!r} registered; Ctrl-C stops everything.",
                    flush=True,
                )
                failed = await stack.failed()
        except asyncio.CancelledError:
            print("stopped.")
            return
    print(
        f"SpotOn stopped: {failed.name} {failed.last_exit or failed.reason} after {failed.restarts} restarts, "
        f"its whole restart budget; see {settings.data_dir / 'logs' / failed.name}.log",
        flush=True,
    )
    raise SystemExit(1)


def _exposure(settings: Settings) -> str:
    """A line naming the listen addresses other machines can reach, when there are any."""
    exposed = sorted({host for host in (settings.facade_host, settings.grpc_host) if not _is_loopback(host)})
    if not exposed:
        return ""
    return f"  listening  on {', '.join(exposed)}: other machines use this machine's address and the ports above\n"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
