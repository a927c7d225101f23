"""An inference service of a test's own, on the settings a ``service_settings`` fixture made.

``async with serving(settings) as app:`` builds the app, serves gRPC on ``settings``' port,
warms the models up, and on exit stops the server and closes the app.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spoton_inference.app import InferenceApp
    from spoton_inference.settings import Settings

# How long a stopping server lets calls in flight finish.
STOP_GRACE_S = 1.0


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[InferenceApp]:
    # Imported here: collecting a test module must not load the service.
    from spoton_inference.app import InferenceApp
    from spoton_inference.grpc_server import build_server

    app = await InferenceApp.create(settings)
    server, _ = build_server(app)
    await server.start()
    try:
        await app.warm_up()
        yield app
    finally:
        await server.stop(grace=STOP_GRACE_S)
        await app.close()
