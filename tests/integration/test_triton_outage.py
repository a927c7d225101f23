"""Triton unreachable when a task starts: the task waits (bounded), then carries on from the
frame it had reached once Triton is back, losing none; or, past the bound, fails with a reason
naming Triton. Never a hang.

The service reaches the real embedded Triton through a TCP proxy the test closes and opens
again, which is what a network cut or a restarting Triton looks like to the client, without
signals to Triton itself (SIGSTOP has crashed its python backend).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from spoton_inference.app import InferenceApp
from spoton_inference.domain.events import StatusUpdate, TaskState, TrackingUpdate
from spoton_inference.embedded.ports import pick_free_ports

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SHORT_BOUND_S = 2.0
LONG_BOUND_S = 60.0
# How long the test keeps Triton away from a task that waits for it.
OUTAGE_S = 4.0


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``stop()`` refuses new connections and cuts the open ones."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = pick_free_ports(1)[0]
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}
            for w in (writer, up_writer):
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@contextlib.asynccontextmanager
async def _service(service_settings, name: str, proxy: TcpProxy, bound_s: float) -> AsyncIterator[InferenceApp]:
    settings = await service_settings(name, triton_grpc_url=proxy.url, triton_outage_wait_s=bound_s)
    app = await InferenceApp.create(settings)
    try:
        yield app
    finally:
        await app.close()


@pytest_asyncio.fixture
async def proxy(live_service) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(live_service.settings.triton_grpc_url)
    yield proxy
    await proxy.stop()


async def _until_step(app: InferenceApp, task_id: str, prefix: str) -> None:
    async with asyncio.timeout(60):
        while True:  # polling the record is what a client does
            if (await app.tasks.get(task_id)).step.startswith(prefix):
                return
            await asyncio.sleep(0.05)


async def test_a_task_waits_for_triton_and_carries_on_from_its_frame_losing_none(live_service, service_settings, proxy):
    async with _service(service_settings, "spoton_triton_back", proxy, LONG_BOUND_S) as app:
        env_dir = live_service.make_environment("triton-back")
        env = await app.catalog.register_directory(str(env_dir))
        record = await app.tasks.start(env.environment_id, [])  # Triton unreachable from the start
        await _until_step(app, record.task_id, "waiting for Triton")
        await asyncio.sleep(OUTAGE_S)
        assert (await app.tasks.get(record.task_id)).frames_processed == 0  # waiting, not failed
        back_at = time.monotonic()
        await proxy.start()
        frames, first_frame_after, final = [], None, None
        async with asyncio.timeout(120):
            async for event in app.tasks.watch(record.task_id, 0):
                if isinstance(event.payload, TrackingUpdate):
                    frames.append(event.payload.global_frame_index)
                    first_frame_after = first_frame_after or time.monotonic() - back_at
                elif isinstance(event.payload, StatusUpdate) and event.payload.state.is_final:
                    final = event.payload
    assert final is not None and final.state is TaskState.COMPLETED, final
    assert frames == list(range(record.total_frames)) and record.total_frames > 0  # every frame, once, in order
    # A Triton that is back is found within the channel's reconnect back-off (1 s) and the wait's (2 s).
    print(f"first frame {first_frame_after:.2f} s after Triton was reachable again")
    assert first_frame_after < 5.0


async def test_past_the_bound_the_task_fails_with_a_reason_naming_triton(live_service, service_settings, proxy):
    async with _service(service_settings, "spoton_triton_gone", proxy, SHORT_BOUND_S) as app:
        env_dir = live_service.make_environment("triton-gone")
        env = await app.catalog.register_directory(str(env_dir))
        started = time.monotonic()
        record = await app.tasks.start(env.environment_id, [])
        async with asyncio.timeout(60):
            while True:
                if (task := await app.tasks.get(record.task_id)).state.is_final:
                    break
                await asyncio.sleep(0.05)
        took = time.monotonic() - started
    assert task.state is TaskState.FAILED
    assert "Triton stayed unavailable for 2 s" in task.error and "SPOTON_TRITON_OUTAGE_WAIT_S" in task.error, task.error
    print(f"failed {took:.2f} s after it started, with a bound of {SHORT_BOUND_S} s")
    assert SHORT_BOUND_S <= took < SHORT_BOUND_S + 10
