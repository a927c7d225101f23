"""Run the inference gRPC service until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from wsgiref.simple_server import WSGIServer

from spoton_inference.app import InferenceApp, wait_for_triton
from spoton_inference.grpc_server import build_server, publish_health
from spoton_inference.metrics import start_metrics_server
from spoton_inference.settings import Settings

log = logging.getLogger("spoton_inference")
TRITON_WAIT_S = 300.0


def start_app_metrics(app: InferenceApp, host: str, port: int) -> WSGIServer:
    """Serve ``app``'s metrics at ``http://host:port/metrics`` (``shutdown()`` the result to stop)."""
    return start_metrics_server(
        host,
        port,
        app.writer,
        app.live,
        app.supervised,
        sinks=app.sink_stats,
        cameras=lambda: app.live_pulls,
        triton=app.models.stats,
        recordings=app.recording_figures,
    )


async def serve(settings: Settings) -> None:
    app = await InferenceApp.create(settings)
    server, health = build_server(app)
    await server.start()
    log.info("gRPC listening on %s:%s (starting)", settings.grpc_host, settings.grpc_port)
    health_task = asyncio.create_task(publish_health(app, health))
    metrics = None
    if settings.metrics_port:
        metrics = start_app_metrics(app, settings.grpc_host, settings.metrics_port)
        log.info("metrics at http://%s:%s/metrics", settings.grpc_host, settings.metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        warm = asyncio.create_task(_warm(app))
        await stop.wait()
        warm.cancel()
    finally:
        log.info("shutting down")
        health_task.cancel()
        if metrics is not None:
            metrics.shutdown()
        await health.enter_graceful_shutdown()
        await server.stop(grace=2.0)
        await app.close()
        with contextlib.suppress(asyncio.CancelledError):
            await health_task


async def _warm(app: InferenceApp) -> None:
    await wait_for_triton(app.models, TRITON_WAIT_S)
    await app.warm_up()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(Settings.from_env()))
