"""Several Tritons as one pool (SPOTON_TRITON_GRPC_URL lists them): calls are balanced over the
live ones, a dead endpoint costs no call an error, a killed one is skipped and rejoins once it
is back, an input Triton rejects is not sent to the others, and with every endpoint down the
call fails naming them all.

Two real embedded Tritons (one module-scoped pair, started together), a dead endpoint (a
closed port) and a frozen one (a gRPC server speaking Triton's protocol that never answers,
as a Triton stopped with SIGSTOP does). The calls carry a TUD-Campus frame (``../shared/real``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
import pytest_asyncio
from tritonclient.grpc import service_pb2_grpc

from spoton_inference.domain.errors import InvalidArgument, Unavailable
from spoton_inference.embedded.ports import LOOPBACK
from spoton_inference.embedded.triton import EmbeddedTriton
from spoton_inference.pipeline.triton_models import CROP_HEIGHT, CROP_WIDTH, OutageWait, TritonModels
from spoton_inference.pipeline.triton_pool import PROBE_TIMEOUT_S, TritonPool
from spoton_inference.services.health import DEGRADED, HEALTHY
from spoton_inference.services.triton_health import triton_components
from spoton_inference.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.timeout(600)

FRAME_VIDEO = REPO_ROOT.parent / "shared" / "real" / "tud-campus" / "cameras" / "c01" / "sub_video_01.mp4"
THRESHOLD = 0.3
# Back-off long enough that a dead endpoint stays skipped for the whole test.
LONG_DOWN_S = 60.0
# The frozen endpoint's calls give up after this (production: 30 s); the window measured.
FROZEN_TIMEOUT_S = 2.0
# Workers calling the pool at once in the frozen-endpoint measurement (cameras of a task, say).
CONCURRENCY = 4
# How long a restarted Triton may take to take calls again once it is ready (back-off cap 1 s).
REJOIN_WITHIN_S = 10.0
POLL_S = 0.05


@pytest.fixture(scope="module")
def frame_rgb() -> np.ndarray:
    capture = cv2.VideoCapture(str(FRAME_VIDEO))
    ok, bgr = capture.read()
    capture.release()
    assert ok, f"cannot read {FRAME_VIDEO}"
    return np.ascontiguousarray(bgr[:, :, ::-1])


@pytest_asyncio.fixture(scope="module")
async def pair(make_data_dir: Callable[[str], Path]) -> AsyncIterator[list[EmbeddedTriton]]:
    """Two Tritons serving the real models, started at once."""
    servers = [EmbeddedTriton(Settings(data_dir=make_data_dir(f"triton-pool-{i}"))) for i in range(2)]
    try:
        await asyncio.gather(*(server.start() for server in servers))
        yield servers
    finally:
        await asyncio.gather(*(server.stop() for server in servers))


class _Frozen(service_pb2_grpc.GRPCInferenceServiceServicer):
    """Takes every inference and readiness call and never answers."""

    async def ModelInfer(self, request, context):  # noqa: N802 (the protocol's names)
        await asyncio.Event().wait()

    async def ServerReady(self, request, context):  # noqa: N802
        await asyncio.Event().wait()


@pytest_asyncio.fixture
async def frozen_url() -> AsyncIterator[str]:
    server = grpc.aio.server()
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(_Frozen(), server)
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    await server.start()
    try:
        yield f"{LOOPBACK}:{port}"
    finally:
        await server.stop(grace=None)


def closed_port_url() -> str:
    """host:port where nothing listens (a port just released)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    return f"{LOOPBACK}:{port}"


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    for _ in range(int(timeout_s / POLL_S)):
        if check():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"no {what} within {timeout_s:g} s")


def requests(pool: TritonPool) -> dict[str, int]:
    return {s.url: s.requests for s in pool.stats()}


async def test_calls_are_balanced_over_two_live_endpoints(pair, frame_rgb):
    a, b = (t.grpc_url for t in pair)
    pool = TritonPool([a, b], "detector", "reid")
    direct = TritonModels(a, "detector", "reid")
    try:
        expected = await direct.detect(frame_rgb, THRESHOLD)
        assert len(expected) > 0
        for _ in range(10):
            found = await pool.detect(frame_rgb, THRESHOLD)
            np.testing.assert_allclose(found.boxes, expected.boxes, atol=1e-3)  # the same answer either way
        assert requests(pool) == {a: 5, b: 5}
        # Calls at once: each goes where the fewest are in flight.
        crops = np.zeros((3, CROP_HEIGHT, CROP_WIDTH, 3), np.uint8)
        vectors = await asyncio.gather(*(pool.embed(crops) for _ in range(8)))
        assert all(v.shape[0] == 3 for v in vectors)
        assert requests(pool) == {a: 9, b: 9}
        # The JPEG itself, decoded by the detector, goes through the pool too.
        ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(frame_rgb[:, :, ::-1]))
        assert ok and await pool.accepts_encoded()
        assert len(await pool.detect_encoded(jpeg.tobytes(), THRESHOLD)) > 0
        assert sum(requests(pool).values()) == 18 + 2  # the model's metadata, asked once, and the call
        assert all(s.failures == 0 and s.up for s in pool.stats())
    finally:
        await pool.close()
        await direct.close()


async def test_a_dead_endpoint_costs_no_call_an_error(pair, frame_rgb):
    dead = closed_port_url()
    a, b = (t.grpc_url for t in pair)
    pool = TritonPool([dead, a, b], "detector", "reid", down_first_s=LONG_DOWN_S)
    try:
        for _ in range(12):
            assert len(await pool.detect(frame_rgb, THRESHOLD)) > 0
        stats = {s.url: s for s in pool.stats()}
        assert (stats[dead].requests, stats[dead].failures, stats[dead].up) == (1, 1, False)
        assert stats[a].requests + stats[b].requests == 12
        assert abs(stats[a].requests - stats[b].requests) <= 1
        # Health reads each endpoint: one down of three is degraded, not failed.
        components = {c.name: c for c in triton_components(await pool.readiness())}
        assert components["triton"].status == DEGRADED and f"{dead} down" in components["triton"].detail
        assert components["model:detector"].status == DEGRADED
        assert await pool.ready() == {"server": True, "detector": True, "reid": True}
    finally:
        await pool.close()


async def test_with_every_endpoint_down_a_call_fails_naming_them_all(frame_rgb):
    urls = [closed_port_url(), closed_port_url()]
    pool = TritonPool(urls, "detector", "reid")
    try:
        with pytest.raises(Unavailable) as first:
            await pool.detect(frame_rgb, THRESHOLD)
        assert all(url in str(first.value) for url in urls) and "SPOTON_TRITON_GRPC_URL" in str(first.value)
        assert requests(pool) == {urls[0]: 1, urls[1]: 1}  # each tried once, no more
        with pytest.raises(Unavailable) as second:
            await pool.detect(frame_rgb, THRESHOLD)
        assert all(url in str(second.value) for url in urls)
        assert sum(requests(pool).values()) == 3  # all down: the one due first is tried, once
        # A task's outage wait rides it out as it does for one Triton, then names it.
        with pytest.raises(Unavailable, match="SPOTON_TRITON_OUTAGE_WAIT_S") as waited:
            await OutageWait(pool, bound_s=0.5).detect(frame_rgb, THRESHOLD)
        assert all(url in str(waited.value) for url in urls)
    finally:
        await pool.close()


async def test_calls_in_flight_when_an_endpoint_dies_double_its_back_off_once(frame_rgb):
    urls = [closed_port_url(), closed_port_url()]
    first_s = 10.0
    pool = TritonPool(urls, "detector", "reid", down_first_s=first_s, down_max_s=1000.0)
    try:
        outcomes = await asyncio.gather(*(pool.detect(frame_rgb, THRESHOLD) for _ in range(6)), return_exceptions=True)
        assert all(isinstance(o, Unavailable) for o in outcomes)
        assert all(e.failures >= 3 for e in pool.endpoints)  # each call tried one or both
        assert all(e.down_steps == 1 for e in pool.endpoints)  # yet one back-off step each
    finally:
        await pool.close()


async def test_one_dead_endpoint_fails_as_a_single_triton_did(frame_rgb):
    url = closed_port_url()
    pool, single = TritonPool([url], "detector", "reid"), TritonModels(url, "detector", "reid")
    try:
        for _ in range(3):  # down after the first, yet tried by every call: nothing else to try
            with pytest.raises(Unavailable, match=f"Triton model 'detector' at {url} is unavailable"):
                await pool.detect(frame_rgb, THRESHOLD)
        with pytest.raises(Unavailable, match=f"Triton model 'detector' at {url} is unavailable"):
            await single.detect(frame_rgb, THRESHOLD)
        assert requests(pool) == {url: 3}
    finally:
        await pool.close()
        await single.close()


async def test_an_input_triton_rejects_is_not_retried_on_the_others(pair):
    a, b = (t.grpc_url for t in pair)
    pool = TritonPool([a, b], "detector", "reid")
    try:
        with pytest.raises(InvalidArgument, match="rejected the input"):
            await pool.embed(np.zeros((1, 10, 10, 3), np.uint8))  # crops must be 256x128
        assert sum(requests(pool).values()) == 1
        assert all(s.failures == 0 and s.up for s in pool.stats())
    finally:
        await pool.close()


async def _calls_within(pool: TritonPool, frame_rgb: np.ndarray, window_s: float) -> int:
    """Calls answered within ``window_s`` by CONCURRENCY workers calling one after another."""
    loop = asyncio.get_running_loop()
    end = loop.time() + window_s
    answered = 0

    async def worker() -> None:
        nonlocal answered
        while loop.time() < end:
            await pool.detect(frame_rgb, THRESHOLD)
            answered += loop.time() < end

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return answered


async def test_a_frozen_endpoint_holds_few_calls_with_least_in_flight(pair, frozen_url, frame_rgb):
    """The choice of least-in-flight over round-robin, measured: with one endpoint frozen, its
    calls hang until their deadline; round-robin soon has every worker waiting on it, while
    least-in-flight stops picking it once it holds its share and the live one serves the rest."""
    live = pair[0].grpc_url
    found = {}
    for least_in_flight in (True, False):
        pool = TritonPool(
            [frozen_url, live],
            "detector",
            "reid",
            timeout_s=FROZEN_TIMEOUT_S,
            shared_memory="off",
            down_first_s=LONG_DOWN_S,
            least_in_flight=least_in_flight,
        )
        try:
            answered = await _calls_within(pool, frame_rgb, FROZEN_TIMEOUT_S)
            stats = {s.url: s for s in pool.stats()}
            found[least_in_flight] = (answered, stats[frozen_url].requests)
            # Every call was answered in the end: the frozen endpoint's, once they timed out, by the live one.
            assert stats[frozen_url].failures == stats[frozen_url].requests and not stats[frozen_url].up
        finally:
            await pool.close()
    print(f"\nanswered within {FROZEN_TIMEOUT_S:g} s, calls sent to the frozen endpoint ({CONCURRENCY} workers):")
    print(f"  least in flight: {found[True]}, round-robin: {found[False]}")
    (lif_answered, lif_frozen), (rr_answered, rr_frozen) = found[True], found[False]
    assert lif_frozen == CONCURRENCY // 2 and rr_frozen == CONCURRENCY
    assert lif_answered > 2 * rr_answered


async def test_health_reads_a_frozen_endpoint_down_within_the_probe_bound(pair, frozen_url):
    pool = TritonPool([frozen_url, pair[0].grpc_url], "detector", "reid", shared_memory="off")
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        components = {c.name: c for c in triton_components(await pool.readiness())}
        assert loop.time() - started < PROBE_TIMEOUT_S + 0.4  # under the health checker's 1.5 s
        assert components["triton"].status == DEGRADED
        assert f"{frozen_url} down (no answer within" in components["triton"].detail
        assert [s.up for s in pool.stats()] == [False, True]  # calls avoid it from now on
    finally:
        await pool.close()


async def test_a_killed_endpoint_is_skipped_and_rejoins_after_it_restarts(pair, frame_rgb):
    a, b = pair
    pool = TritonPool([a.grpc_url, b.grpc_url], "detector", "reid", down_first_s=0.5, down_max_s=1.0)
    errors: list[Exception] = []
    calls = 0
    stop = asyncio.Event()

    async def keep_calling() -> None:
        nonlocal calls
        while not stop.is_set():
            try:
                await pool.detect(frame_rgb, THRESHOLD)
                calls += 1
            except Exception as exc:  # any error is the finding
                errors.append(exc)
            await asyncio.sleep(0.05)

    def answered_by(url: str) -> int:
        stats = {s.url: s for s in pool.stats()}
        return stats[url].requests - stats[url].failures

    caller = asyncio.create_task(keep_calling())
    try:
        await until(lambda: answered_by(b.grpc_url) >= 3, REJOIN_WITHIN_S, "calls answered by both")
        os.kill(b.pid, signal.SIGKILL)  # mid-run
        await asyncio.wait_for(b.crashed(), REJOIN_WITHIN_S)
        await asyncio.sleep(1.0)  # calls go on meanwhile, b tried again after each back-off
        assert {s.url: s.failures > 0 for s in pool.stats()} == {a.grpc_url: False, b.grpc_url: True}
        await b.start()  # same ports, as the embedded supervisor restarts it
        before = answered_by(b.grpc_url)
        await until(lambda: answered_by(b.grpc_url) > before + 2, REJOIN_WITHIN_S, f"{b.grpc_url} rejoining")
    finally:
        stop.set()
        await caller
        await pool.close()
    assert not errors, errors[:3]
    assert calls > 10
    fresh = TritonPool([a.grpc_url, b.grpc_url], "detector", "reid")
    try:
        assert {c.status for c in triton_components(await fresh.readiness())} == {HEALTHY}
    finally:
        await fresh.close()
