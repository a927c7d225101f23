"""The floor of a Python gRPC server on this machine: grpc.aio with the standard health
service only, no interceptors, no state behind it, in a process of its own.

``GetHealth`` through SpotOn runs on the same grpc.aio, so its rate is measured beside this
one's: their ratio is what SpotOn adds (authentication, the guard, its own handler), and this
rate alone is the most any single grpc.aio process here could answer.

    python bench/serving_lib/bare_grpc.py PORT   # prints "ready" once it serves

``serving(port)`` starts it as a child and stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

READY_LINE = b"ready\n"
START_TIMEOUT_S = 30.0


async def _serve(port: int) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_health.v1._async import HealthServicer

    from spoton_inference.grpc_api.reflection import add_reflection

    server = grpc.aio.server()
    health = HealthServicer()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    # SpotOn's reflection (method symbols answered), so ghz finds the schema as it does there.
    add_reflection(server, [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    sys.stdout.buffer.write(READY_LINE)
    sys.stdout.flush()
    await server.wait_for_termination()


@contextlib.asynccontextmanager
async def serving(port: int) -> AsyncIterator[str]:
    """The bare server on 127.0.0.1:``port`` (its target) while the block runs."""
    child = await asyncio.create_subprocess_exec(sys.executable, __file__, str(port), stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), START_TIMEOUT_S)
        if line != READY_LINE:
            raise RuntimeError(f"the bare gRPC server did not start (exit {child.returncode})")
        yield f"127.0.0.1:{port}"
    finally:
        if child.returncode is None:
            child.terminate()
        await child.wait()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
