"""SSE fan-out on the real stack: a hundred and more browsers of one task share one upstream
WatchTask, each gets every event in order (as WatchTask itself gives them), each is checked with
its own credential, and a browser that stops reading is cut off without holding up the others,
then resumes with ``Last-Event-ID`` without a gap."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import statistics
import time
from collections.abc import AsyncIterator

import h11
import httpx
import pytest
import uvicorn
from litestar import Litestar
from support.auth import make_key

from spoton.v1 import tasks_pb2
from spoton_client.client import SpotOnClient
from spoton_facade import create_app
from spoton_facade.settings import FacadeSettings
from spoton_inference.domain.events import CameraTracksOut, TrackingUpdate
from spoton_inference.storage.redis_events import RedisEventLog

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BASE = "/api/v1/processing-tasks"
SUBSCRIBERS = 120
# Small, so a browser that stops reading falls out of it quickly.
REPLAY_EVENTS = 16
# Events a test publishes itself, each this large: together far more than the socket buffers
# between the facade and a browser that does not read.
BULK_EVENTS = 300
BULK_BYTES = 8 * 1024
HEARTBEAT_S = 0.5
# The facade's socket send buffer (inherited by accepted connections): a few hundred KiB at
# most between the facade and a stalled browser, as kernels hold by default before autotuning.
SEND_BUFFER = 64 * 1024


@contextlib.asynccontextmanager
async def _facade(live_service) -> AsyncIterator[tuple[str, Litestar]]:
    """The facade under a real uvicorn in this loop (as ``serve_facade``), with a small replay
    ring, and its app so the test can read the hub's counters."""
    settings = FacadeSettings(
        inference_target=live_service.target,
        media_root=live_service.settings.media_root,
        sse_heartbeat_seconds=HEARTBEAT_S,
        sse_replay_events=REPLAY_EVENTS,
    )
    app = create_app(settings)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        app.state.event_streams.drain()
        server.should_exit = True
        await serving
        listener.close()


async def _paused_task(http: httpx.AsyncClient, environment_id: str) -> str:
    task_id = (await http.post(f"{BASE}/start", json={"environment_id": environment_id})).json()["task_id"]
    assert (await http.post(f"{BASE}/{task_id}/control", json={"action": "pause"})).status_code == 200
    return task_id


async def _control(http: httpx.AsyncClient, task_id: str, action: str) -> None:
    assert (await http.post(f"{BASE}/{task_id}/control", json={"action": action})).status_code == 200


class Received:
    """One browser's events: ``(id, event name, data)`` and each one's lag behind ``emitted_at``."""

    def __init__(self) -> None:
        self.events: list[tuple[int, str, dict]] = []
        self.lags: list[float] = []
        self.first = asyncio.Event()

    @property
    def ids(self) -> list[int]:
        return [i for i, _, _ in self.events]

    def feed_block(self, block: str) -> None:
        fields = dict(line.split(": ", 1) for line in block.split("\n") if line and not line.startswith(":"))
        if "id" in fields and "data" in fields:
            data = json.loads(fields["data"])
            self.events.append((int(fields["id"]), fields["event"], data))
            self.lags.append(time.time() - dt.datetime.fromisoformat(data["emitted_at"]).timestamp())
            self.first.set()


async def _browser(http: httpx.AsyncClient, task_id: str, into: Received, **headers: str) -> int:
    """Read the task's SSE stream to its end, as EventSource does; returns the HTTP status."""
    async with http.stream("GET", f"{BASE}/{task_id}/events", headers=headers) as response:
        if response.status_code != 200:
            into.first.set()
            return response.status_code
        text = ""
        async for chunk in response.aiter_text():
            text += chunk
            *blocks, text = text.split("\n\n")
            for block in blocks:
                into.feed_block(block)
    return 200


def _payload_kind(event: tasks_pb2.TaskEvent) -> str:
    return event.WhichOneof("payload") or ""


async def test_browsers_of_one_task_share_one_upstream_and_all_get_every_event(
    live_service, registered, admin_headers
) -> None:
    watches = live_service.app.tasks.open_watches
    limits = httpx.Limits(max_connections=SUBSCRIBERS + 5)
    async with (
        _facade(live_service) as (url, app),
        httpx.AsyncClient(base_url=url, headers=admin_headers, timeout=60, limits=limits) as http,
        SpotOnClient(live_service.target, api_key=live_service.api_key) as grpc_client,
    ):
        hub = app.state.event_streams.tasks
        task_id = await _paused_task(http, await registered("sse-fanout"))
        received = [Received() for _ in range(SUBSCRIBERS)]
        browsers = [asyncio.create_task(_browser(http, task_id, r)) for r in received]
        # WatchTask itself, for comparison: what every browser must get.
        reference = asyncio.create_task(_collect(grpc_client, task_id))
        async with asyncio.timeout(60):
            await asyncio.gather(*(r.first.wait() for r in received))
        # One upstream call for all of them (the other open watch is the reference).
        assert (hub.upstreams, hub.subscribers, hub.opened) == (1, SUBSCRIBERS, 1)
        assert live_service.app.tasks.open_watches == watches + 2
        await _control(http, task_id, "resume")
        async with asyncio.timeout(120):
            statuses = await asyncio.gather(*browsers)
            expected = await reference
    assert statuses == [200] * SUBSCRIBERS
    ids = [e.sequence for e in expected]
    assert ids == list(range(1, len(ids) + 1)) and _payload_kind(expected[-1]) == "status_update"
    kinds = [_payload_kind(e) for e in expected]
    for browser in received:
        assert browser.ids == ids  # every event, in order, none twice
        assert [name for _, name, _ in browser.events] == kinds
    lags = sorted(lag for r in received for lag in r.lags)
    print(f"{SUBSCRIBERS} browsers, {len(ids)} events: lag p50 {statistics.median(lags) * 1000:.0f} ms")
    # All gone: the upstream call with them.
    assert hub.upstreams == 0 and hub.cut_off == 0
    await _open_watches(live_service, watches)


async def test_each_browser_joining_a_shared_upstream_is_checked_with_its_own_credential(
    live_service, registered, admin_headers
) -> None:
    hall, yard = await registered("sse-scope-hall"), await registered("sse-scope-yard")
    hall_viewer = await make_key(live_service.target, "viewer", [hall])
    yard_viewer = await make_key(live_service.target, "viewer", [yard])
    async with (
        _facade(live_service) as (url, app),
        httpx.AsyncClient(base_url=url, headers=admin_headers, timeout=60) as http,
    ):
        task_id = await _paused_task(http, hall)
        try:
            admin = Received()
            following = asyncio.create_task(_browser(http, task_id, admin))
            await asyncio.wait_for(admin.first.wait(), 30)
            assert app.state.event_streams.tasks.upstreams == 1
            # Another environment's viewer: as for a task that does not exist, though one is shared.
            refused = await http.get(f"{BASE}/{task_id}/events", headers={"Authorization": f"Bearer {yard_viewer}"})
            assert refused.status_code == 404 and refused.json()["grpc_status"] == "NOT_FOUND"
            unknown = await http.get(f"{BASE}/{task_id}/events", headers={"Authorization": "Bearer spk_x_unknown"})
            assert unknown.status_code == 401
            viewer = Received()
            viewing = asyncio.create_task(
                _browser(http, task_id, viewer, Authorization=f"Bearer {hall_viewer}", **{"Last-Event-ID": "0"})
            )
            await asyncio.wait_for(viewer.first.wait(), 30)
            assert app.state.event_streams.tasks.subscribers == 2
        finally:
            await _control(http, task_id, "cancel")
        async with asyncio.timeout(60):
            assert await asyncio.gather(following, viewing) == [200, 200]
        assert viewer.ids == admin.ids


async def test_a_browser_that_stops_reading_is_cut_off_and_resumes_without_loss(
    live_service, registered, admin_headers
) -> None:
    async with (
        _facade(live_service) as (url, app),
        httpx.AsyncClient(base_url=url, headers=admin_headers, timeout=60) as http,
    ):
        hub = app.state.event_streams.tasks
        task_id = await _paused_task(http, await registered("sse-slow"))
        fast = [Received() for _ in range(4)]
        browsers = [asyncio.create_task(_browser(http, task_id, r)) for r in fast]
        slow = await StalledBrowser.open(url, f"{BASE}/{task_id}/events", admin_headers)
        async with asyncio.timeout(30):
            await asyncio.gather(*(r.first.wait() for r in fast))
            while True:  # the hub's counter: polled, it has no event to wait on
                if hub.subscribers == len(fast) + 1:
                    break
                await asyncio.sleep(0.05)
        # Far more than the stalled browser's socket buffers take, then the end of the task.
        await _publish_bulk(live_service, task_id)
        await _control(http, task_id, "cancel")
        async with asyncio.timeout(120):
            assert await asyncio.gather(*browsers) == [200] * len(fast)
        # The others got everything while the stalled browser read nothing, and not late.
        last = fast[0].ids[-1]
        assert all(r.ids == list(range(1, last + 1)) for r in fast)
        assert fast[0].events[-1][2]["state"] == "cancelled"
        lags = sorted(lag for r in fast for lag in r.lags[-BULK_EVENTS:])
        assert lags[int(len(lags) * 0.99)] < 10.0, lags[-5:]

        # The stalled browser reads again: what the facade had sent, then its stream ends.
        async with asyncio.timeout(60):
            cut = await slow.read_to_end()
        assert hub.cut_off == 1
        assert cut.ids == list(range(1, len(cut.ids) + 1)) and len(cut.ids) < last
        # EventSource reconnects with the last id it got: the rest follows, with no gap.
        resumed = Received()
        status = await _browser(http, task_id, resumed, **{"Last-Event-ID": str(cut.ids[-1])})
        assert status == 200 and cut.ids + resumed.ids == list(range(1, last + 1))
    print(f"stalled browser cut off after {len(cut.ids)} of {last} events; p99 lag of the others {lags[-1]:.2f} s")


class StalledBrowser:
    """An SSE client on a raw socket with a small receive buffer that reads nothing until told,
    so the facade's writes to it back up (as a browser on a stalled network does)."""

    RECEIVE_BUFFER = 4096

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    @classmethod
    async def open(cls, url: str, path: str, headers: dict[str, str]) -> StalledBrowser:
        host, port = url.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cls.RECEIVE_BUFFER)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (host, int(port)))
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
        return cls(sock)

    async def read_to_end(self) -> Received:
        """Everything until the facade ends the response (it is cut off, so it does)."""
        loop = asyncio.get_running_loop()
        parser, received, text = h11.Connection(h11.CLIENT), Received(), ""
        parser.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
        parser.send(h11.EndOfMessage())
        try:
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    parser.receive_data(await loop.sock_recv(self._sock, 65536))
                elif isinstance(event, h11.Response):
                    assert event.status_code == 200
                elif isinstance(event, h11.Data):
                    text += bytes(event.data).decode()
                    *blocks, text = text.split("\n\n")
                    for block in blocks:
                        received.feed_block(block)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return received
        finally:
            self._sock.close()


async def _publish_bulk(live_service, task_id: str) -> None:
    """BULK_EVENTS large tracking updates on the task's stream, as its runner publishes them."""
    log = RedisEventLog.from_url(live_service.settings.redis_url, retention=10_000)
    camera = CameraTracksOut("c1", "x" * BULK_BYTES, 0, [])
    try:
        for frame in range(BULK_EVENTS):
            await log.append(task_id, TrackingUpdate(frame, "sse-slow", time.time(), [camera]))
    finally:
        await log.close()


async def _collect(client: SpotOnClient, task_id: str) -> list[tasks_pb2.TaskEvent]:
    return [event async for event in client.watch(task_id)]


async def _open_watches(live_service, expected: int) -> None:
    async with asyncio.timeout(5.0):
        while True:  # a plain counter in the service: polled
            if live_service.app.tasks.open_watches == expected:
                return
            await asyncio.sleep(0.02)


async def test_idle_browsers_of_a_shared_upstream_get_heartbeats_and_drain_ends_them(
    live_service, registered, admin_headers
) -> None:
    """While a task is paused, every browser on its shared upstream gets a heartbeat each period;
    when shutdown begins, every stream ends at once, not at its next heartbeat."""
    browsers = 5
    async with (
        _facade(live_service) as (url, app),
        httpx.AsyncClient(base_url=url, headers=admin_headers, timeout=60) as http,
    ):
        task_id = await _paused_task(http, await registered("sse-heartbeats"))
        beating = [asyncio.Event() for _ in range(browsers)]

        async def browser(two_beats: asyncio.Event) -> None:
            beats = 0
            async with http.stream("GET", f"{BASE}/{task_id}/events") as response:
                assert response.status_code == 200
                async for chunk in response.aiter_raw():
                    beats += chunk.count(b": heartbeat")
                    if beats >= 2:
                        two_beats.set()

        reading = [asyncio.create_task(browser(b)) for b in beating]
        async with asyncio.timeout(30):
            await asyncio.gather(*(b.wait() for b in beating))
        assert app.state.event_streams.tasks.subscribers == browsers
        app.state.event_streams.drain()
        async with asyncio.timeout(HEARTBEAT_S / 2):
            await asyncio.gather(*reading)
        await _control(http, task_id, "cancel")
