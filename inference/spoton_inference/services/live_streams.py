"""Live streams: a client's frames of one environment tracked as they arrive (StreamFrames).

Each stream gets a tracking session of its own (``pipeline/live.py``: ``LiveSession``), built
by a factory the composition root gives (app.py binds the models, the tracking settings and
the limits), so this service knows neither the pipeline nor the settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from spoton_inference.domain.environment import Environment
from spoton_inference.domain.live_frames import LiveFrame, LiveResult


class Environments(Protocol):
    """Where environments are looked up (services/catalog.py: Catalog)."""

    def get(self, environment_id: str) -> Environment: ...


class TrackingSession(Protocol):
    """One stream's tracking state (pipeline/live.py: LiveSession)."""

    def stream(self, frames: AsyncIterator[LiveFrame]) -> AsyncIterator[LiveResult]: ...


# An environment -> a new session over its cameras; raises NotFound when it has none.
OpenSession = Callable[[Environment], TrackingSession]


class LiveStreams:
    """Opens tracked live streams over the catalogue's environments."""

    def __init__(self, environments: Environments, open_session: OpenSession) -> None:
        self._environments = environments
        self._open_session = open_session

    def environment(self, environment_id: str) -> Environment:
        """The environment a stream is bound to; NotFound for an unknown one."""
        return self._environments.get(environment_id)

    def stream(self, environment: Environment, frames: AsyncIterator[LiveFrame]) -> AsyncIterator[LiveResult]:
        """Results for ``frames``, in order (see ``LiveSession.stream``). The session is opened
        now, so an environment without cameras is refused before any frame is read."""
        return self._open_session(environment).stream(frames)
