"""``python -m spoton_facade``: serve the facade with uvicorn on the configured host and port."""

from __future__ import annotations

import socket

import uvicorn

from spoton_facade.app import create_app
from spoton_facade.settings import FacadeSettings
from spoton_facade.sse import EventStreams

# Requests still running this long after shutdown began are cancelled.
GRACEFUL_SHUTDOWN_S = 5


class DrainingServer(uvicorn.Server):
    """A uvicorn server that ends SSE streams as soon as shutdown begins.

    uvicorn waits for open responses before shutting down, and an SSE response never finishes
    by itself; drained streams end cleanly and browsers resume them with ``Last-Event-ID``.
    """

    def __init__(self, config: uvicorn.Config, streams: EventStreams) -> None:
        super().__init__(config)
        self._streams = streams

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drain the event streams, then shut down as uvicorn does."""
        self._streams.drain()
        await super().shutdown(sockets)


def main() -> None:
    """Run one uvicorn worker; the app object (not an import string) keeps it to one process."""
    settings = FacadeSettings.from_env()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.facade_host,
        port=settings.facade_port,
        log_level="info",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    DrainingServer(config, app.state.event_streams).run()


if __name__ == "__main__":
    main()
