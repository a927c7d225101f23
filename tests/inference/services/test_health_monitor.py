"""HealthMonitor: readers answered from the newest probe round (N reads, a bounded number of
probe runs), a component that stops or freezes read failed after the next round, restarts
read each round, and the prober gone once closed.

The dependency probed is a real TCP server on loopback that answers a ping, stopped (closed)
or frozen (accepting and never answering) as the test needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest_asyncio

from spoton_inference.services.health import (
    FAILED,
    HEALTHY,
    PROBER_TASK_NAME,
    STARTING,
    ComponentHealth,
    HealthChecker,
    HealthMonitor,
    SupervisedComponent,
)

INTERVAL_S = 0.1
TIMEOUT_S = 0.3


class PingServer:
    """A dependency: answers b"pong" to b"ping", unless stopped or frozen."""

    def __init__(self) -> None:
        self._thawed = asyncio.Event()  # clear: frozen (SIGSTOP), set: answering
        self._thawed.set()
        self._server: asyncio.Server | None = None
        self.port = 0

    def freeze(self) -> None:
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readexactly(4)
            await self._thawed.wait()  # frozen: accepted, no answer until thawed
            writer.write(b"pong")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the prober gave up on us
        finally:
            writer.close()

    async def probe(self) -> list[ComponentHealth]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(b"ping")
            ok = await reader.readexactly(4) == b"pong"
        finally:
            writer.close()
        return [ComponentHealth("db", HEALTHY if ok else FAILED, f"127.0.0.1:{self.port}")]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[PingServer]:
    s = PingServer()
    await s.start()
    yield s
    s.thaw()
    await asyncio.sleep(0)  # let frozen handlers answer and close


async def _until(monitor: HealthMonitor, status: str, limit_s: float) -> float:
    """Seconds until ``db`` reads ``status``, reading as often as a dashboard could."""
    started = time.monotonic()
    while {c.name: c for c in (await monitor.latest(warmed_up=True)).components}["db"].status != status:
        assert time.monotonic() - started < limit_s, f"db still not {status} after {limit_s}s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_many_reads_cost_a_bounded_number_of_probe_runs(server) -> None:
    checker = HealthChecker({"db": server.probe}, timeout_s=TIMEOUT_S)
    monitor = HealthMonitor(checker, interval_s=INTERVAL_S)
    monitor.start()
    try:
        started = time.monotonic()
        reports = []
        for _ in range(50):
            reports += await asyncio.gather(*(monitor.latest(warmed_up=True) for _ in range(40)))
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        assert len(reports) == 2000 and all(r.status == HEALTHY for r in reports)
        # One round per interval, whatever the readers do (plus the round running at the end).
        assert checker.probe_runs <= elapsed / INTERVAL_S + 2, (checker.probe_runs, elapsed)
        assert monitor.rounds >= 1
    finally:
        await monitor.close()


async def test_a_stopped_component_reads_failed_after_the_next_round(server) -> None:
    monitor = HealthMonitor(HealthChecker({"db": server.probe}, timeout_s=TIMEOUT_S), interval_s=INTERVAL_S)
    monitor.start()
    try:
        await _until(monitor, HEALTHY, 2.0)
        await server.stop()
        assert await _until(monitor, FAILED, 2.0) <= INTERVAL_S + TIMEOUT_S + 0.5
        [db] = (await monitor.latest(warmed_up=True)).components
        assert "ConnectionRefusedError" in db.detail
    finally:
        await monitor.close()


async def test_a_frozen_component_reads_failed_within_an_interval_and_the_bound(server) -> None:
    monitor = HealthMonitor(HealthChecker({"db": server.probe}, timeout_s=TIMEOUT_S), interval_s=INTERVAL_S)
    monitor.start()
    try:
        await _until(monitor, HEALTHY, 2.0)
        server.freeze()
        asked = time.monotonic()
        assert await _until(monitor, FAILED, 2.0) <= INTERVAL_S + TIMEOUT_S + 0.5
        # Readers never waited on the frozen server: each read is answered from memory.
        assert time.monotonic() - asked < 2.0
        [db] = (await monitor.latest(warmed_up=True)).components
        assert f"no answer within {TIMEOUT_S:g}s" in db.detail
        server.thaw()
        await _until(monitor, HEALTHY, 3.0)
    finally:
        await monitor.close()


async def test_restarts_show_at_once_when_the_supervisor_writes_and_warm_up_too(server) -> None:
    supervised = [SupervisedComponent("db", "healthy")]
    version = 0  # what the supervision file's stat would give: changes with each write
    monitor = HealthMonitor(
        HealthChecker({"db": server.probe}, timeout_s=TIMEOUT_S),
        lambda: supervised,
        interval_s=60.0,  # no second round during the test: only the version change can show it
        supervised_version=lambda: version,
    )
    monitor.start()
    try:
        assert (await monitor.latest(warmed_up=False)).status == STARTING
        assert (await monitor.latest(warmed_up=True)).status == HEALTHY
        supervised = [SupervisedComponent("db", "healthy", restarts=1, last_exit="was killed by SIGKILL")]
        assert (await monitor.latest(warmed_up=True)).components[0].restarts == 0, "unchanged version: not read"
        version += 1
        [db] = (await monitor.latest(warmed_up=True)).components
        assert (db.restarts, db.last_exit) == (1, "was killed by SIGKILL")
        assert monitor.rounds == 1 and monitor.checker.probe_runs == 1
    finally:
        await monitor.close()


async def test_closing_stops_the_prober_and_its_hung_probe(server) -> None:
    def running() -> set[asyncio.Task]:
        names = (PROBER_TASK_NAME, "health-probe-db")
        return {t for t in asyncio.all_tasks() if t.get_name() in names and not t.done()}

    others = running()  # a service other tests share in this loop has a prober of its own
    server.freeze()
    monitor = HealthMonitor(HealthChecker({"db": server.probe}, timeout_s=TIMEOUT_S), interval_s=INTERVAL_S)
    monitor.start()
    monitor.start()  # a second start while it runs starts nothing more
    assert (await monitor.latest(warmed_up=True)).components[0].status == FAILED
    assert len(running() - others) == 2, "the prober and the hung probe run"
    await monitor.close()
    assert running() - others == set() and not monitor.running
