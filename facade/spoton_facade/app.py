"""The Litestar application: routes, the shared gRPC channel and dependency injection.

Dependencies every handler can ask for by name:

* ``settings`` — :class:`~spoton_facade.settings.FacadeSettings`;
* ``inference`` — an :class:`~spoton_facade.clients.inference.InferenceClient` on the app's one channel,
  carrying the caller's credential (header or session cookie) as gRPC ``authorization``
  metadata (see :mod:`spoton_facade.security`; the facade holds no credential of its own);
* ``event_streams`` — the :class:`~spoton_facade.sse.EventStreams` that opens SSE streams;
  it is also ``app.state.event_streams``, for the server to drain on shutdown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.static_files import create_static_files_router
from litestar.types import Scope

from spoton_facade import api_docs
from spoton_facade.clients.inference import InferenceClient, open_channel, open_upload_channel, request_metadata
from spoton_facade.contract import allow_every_method, finish_openapi, refuse_nul
from spoton_facade.problems import EXCEPTION_HANDLERS
from spoton_facade.routes.analytics import AnalyticsController, ZoneController
from spoton_facade.routes.auth import OPEN_OPERATIONS, AuditController, AuthController
from spoton_facade.routes.camera_registry import CameraRegistryController, CameraSummaryController
from spoton_facade.routes.cameras import CameraOperationsController
from spoton_facade.routes.dashboard import DASHBOARD_PATH, LOGIN_PATH, STATIC_DIR, DashboardController
from spoton_facade.routes.environments import EnvironmentController
from spoton_facade.routes.health import HEALTH_PATH, HealthController
from spoton_facade.routes.jobs import JobController
from spoton_facade.routes.media import MediaController
from spoton_facade.routes.sinks import EnvironmentSinksController, SinkController
from spoton_facade.routes.tasks import TaskController
from spoton_facade.security import document_security, guard_requests
from spoton_facade.settings import FacadeSettings
from spoton_facade.sse import EventStreams

API_PREFIX = "/api/v1"
# Answer with no credential: the health probe and the dashboard's pages (whose scripts then
# ask for a login when the API answers 401).
OPEN_PATHS = frozenset({HEALTH_PATH, DASHBOARD_PATH, LOGIN_PATH})
STATIC_PATH = "/static"
OPEN_PREFIXES = (STATIC_PATH, api_docs.SCHEMA_PATH)


def create_app(settings: FacadeSettings | None = None) -> Litestar:
    """Build the facade for ``settings`` (read from the environment when not given)."""
    settings = settings or FacadeSettings.from_env()
    api = Router(
        path=API_PREFIX,
        route_handlers=[
            TaskController,
            EnvironmentController,
            MediaController,
            AnalyticsController,
            ZoneController,
            JobController,
            CameraRegistryController,
            CameraSummaryController,
            CameraOperationsController,
            AuthController,
            AuditController,
            EnvironmentSinksController,
            SinkController,
        ],
    )
    app = Litestar(
        route_handlers=[
            HealthController,
            DashboardController,
            api,
            create_static_files_router(path=STATIC_PATH, directories=[STATIC_DIR], include_in_schema=False),
        ],
        dependencies={
            "settings": Provide(_provide_settings, sync_to_thread=False),
            "inference": Provide(_provide_inference, sync_to_thread=False),
            "event_streams": Provide(_provide_event_streams, sync_to_thread=False),
        },
        state=State(
            {
                "settings": settings,
                "event_streams": EventStreams(settings.sse_heartbeat_seconds, settings.sse_replay_events),
            }
        ),
        lifespan=[_inference_channel],
        exception_handlers=EXCEPTION_HANDLERS,
        cors_config=_cors(settings),
        openapi_config=OpenAPIConfig(
            title="SpotOn facade",
            version="1.0.0",
            description="REST, SSE and media over the SpotOn inference service's gRPC API.",
            # Swagger UI and Redoc from this origin, not from CDNs (see spoton_facade.api_docs).
            render_plugins=api_docs.render_plugins(),
            openapi_router=api_docs.docs_router(),
        ),
        middleware=[refuse_nul, guard_requests(settings.cors_allow_origins, _is_open), allow_every_method],
    )
    finish_openapi(app)
    document_security(app.plugins.get("OpenAPIPlugin").provide_openapi_schema(), _open_operations(app))
    return app


def _is_open(scope: Scope) -> bool:
    """Whether the request's route answers with no credential (see OPEN_PATHS; static files
    and the OpenAPI document hold no data)."""
    handler = scope.get("route_handler")
    path = scope.get("path_template", "")
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or getattr(handler, "name", None) in OPEN_OPERATIONS


def _open_operations(app: Litestar) -> set[tuple[str, str]]:
    """(path, method) of what answers with no credential: health, the dashboard's pages and
    login/logout (the dashboard's static files are not in the OpenAPI document)."""
    opened: set[tuple[str, str]] = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if route.path_format in OPEN_PATHS or handler.name in OPEN_OPERATIONS:
                opened |= {(route.path_format, method.lower()) for method in handler.http_methods}
    return opened


@contextlib.asynccontextmanager
async def _inference_channel(app: Litestar) -> AsyncIterator[None]:
    # grpc.aio channels bind to the running loop, so the channel is made here, not in create_app.
    channel = open_channel(app.state.settings)
    app.state.inference_channel = channel
    app.state.upload_channel = open_upload_channel(app.state.settings)
    try:
        yield
    finally:
        # Cancels any call still open (SSE streams outliving the graceful shutdown).
        await channel.close()
        app.state.upload_channel.close()


def _provide_settings(state: State) -> FacadeSettings:
    return state.settings


def _provide_inference(state: State, request: Request[Any, Any, Any]) -> InferenceClient:
    return InferenceClient(state.inference_channel, request_metadata(request))


def _provide_event_streams(state: State) -> EventStreams:
    return state.event_streams


def _cors(settings: FacadeSettings) -> CORSConfig | None:
    if not settings.cors_allow_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_allow_origins),
        allow_headers=[
            "Authorization",
            "X-API-Key",
            "Content-Type",
            "Last-Event-ID",
            "Range",
            "If-None-Match",
            "If-Range",
        ],
        expose_headers=["Accept-Ranges", "Content-Length", "Content-Range", "ETag", "Location"],
    )
