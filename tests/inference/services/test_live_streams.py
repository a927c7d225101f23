"""LiveStreams: one session per stream, opened through the factory the root gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spoton_inference.domain.environment import Environment, FloorMap
from spoton_inference.domain.errors import NotFound
from spoton_inference.domain.live_frames import LiveFrame, LiveResult
from spoton_inference.services.live_streams import LiveStreams

ENV = Environment("site", "Site", FloorMap(Path("map.png"), 0.01), ())


class Environments:
    def get(self, environment_id: str) -> Environment:
        if environment_id != ENV.environment_id:
            raise NotFound(f"environment {environment_id!r} not found")
        return ENV


class Session:
    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    async def stream(self, frames: AsyncIterator[LiveFrame]) -> AsyncIterator[LiveResult]:
        async for frame in frames:
            yield LiveResult(
                self.environment.environment_id, frame.camera_id, frame.frame_id, 0, 0, 0, 0, 1, 1, (), 0, 0
            )


async def frames(*ids: int) -> AsyncIterator[LiveFrame]:
    for i in ids:
        yield LiveFrame("c1", b"jpeg", None, i)


async def test_each_stream_opens_a_session_of_its_own_over_the_environment() -> None:
    opened: list[Session] = []

    def open_session(environment: Environment) -> Session:
        opened.append(Session(environment))
        return opened[-1]

    live = LiveStreams(Environments(), open_session)
    env = live.environment("site")
    first = [r.frame_id async for r in live.stream(env, frames(1, 2))]
    second = [r.frame_id async for r in live.stream(env, frames(3))]
    assert (first, second) == ([1, 2], [3])
    assert [s.environment for s in opened] == [ENV, ENV]


async def test_an_unknown_environment_and_a_refused_session_raise_before_any_frame() -> None:
    def no_cameras(environment: Environment) -> Session:
        raise NotFound(f"environment {environment.environment_id!r} has no cameras to stream")

    live = LiveStreams(Environments(), no_cameras)
    with pytest.raises(NotFound, match="'nowhere'"):
        live.environment("nowhere")
    with pytest.raises(NotFound, match="no cameras"):
        live.stream(ENV, frames(1))
