"""The pure parts of the Triton pool (no Triton here; tests/inference/pipeline/test_triton_pool.py
runs the pool against real ones): which endpoint a call tries, the back-off of a failing one,
the endpoint list in the settings, the health components and the per-endpoint metrics."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from spoton_inference.app import source_policy_for
from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.domain.model_readiness import EndpointReadiness
from spoton_inference.embedded.ports import LOOPBACK, pick_free_port
from spoton_inference.metrics import start_metrics_server
from spoton_inference.pipeline.live import LiveStats
from spoton_inference.pipeline.triton_pool import Balancer, Endpoint, EndpointStats
from spoton_inference.services.health import DEGRADED, FAILED, HEALTHY, ComponentHealth
from spoton_inference.services.source_policy import SourceRefused
from spoton_inference.services.triton_health import triton_components
from spoton_inference.settings import Settings
from spoton_inference.storage.journal import Journal
from spoton_inference.storage.track_writer import TrackPointWriter

FIRST_S, MAX_S = 1.0, 8.0


def endpoints(*urls: str) -> list[Endpoint]:
    return [Endpoint(url) for url in urls]


def picks(balancer: Balancer, n: int, now: float = 0.0) -> list[str]:
    """The endpoints of ``n`` calls in a row, each answered before the next."""
    out = []
    for _ in range(n):
        endpoint = balancer.pick(now, set())
        assert endpoint is not None
        out.append(endpoint.url)
    return out


def test_idle_equal_endpoints_take_calls_in_turn():
    assert picks(Balancer(endpoints("a", "b", "c")), 6) == ["a", "b", "c", "a", "b", "c"]


def test_the_endpoint_with_fewest_calls_in_flight_is_picked():
    a, b, c = endpoints("a", "b", "c")
    a.in_flight, b.in_flight, c.in_flight = 3, 1, 2
    assert picks(Balancer([a, b, c]), 2) == ["b", "b"]
    # Round-robin ignores what is in flight: a frozen endpoint keeps getting its turn.
    assert picks(Balancer([a, b, c], least_in_flight=False), 3) == ["a", "b", "c"]


def test_a_down_endpoint_is_skipped_until_its_back_off_ends():
    a, b = endpoints("a", "b")
    balancer = Balancer([a, b])
    a.mark_down(10.0, "refused", FIRST_S, MAX_S)
    assert picks(balancer, 3, now=10.5) == ["b", "b", "b"]
    assert sorted(picks(balancer, 2, now=11.0)) == ["a", "b"]  # due again


def test_one_call_tries_each_up_endpoint_once_and_no_down_one():
    a, b, c = endpoints("a", "b", "c")
    c.mark_down(0.0, "refused", FIRST_S, MAX_S)
    balancer, tried = Balancer([a, b, c]), set()
    while (endpoint := balancer.pick(0.5, tried)) is not None:
        tried.add(endpoint.url)
    assert tried == {"a", "b"}


def test_when_every_endpoint_is_down_a_call_tries_the_one_due_first_once():
    a, b = endpoints("a", "b")
    a.mark_down(0.0, "refused", FIRST_S, MAX_S)
    a.mark_down(0.0, "refused", FIRST_S, MAX_S)  # second in a row: 2 s
    b.mark_down(0.0, "refused", FIRST_S, MAX_S)  # 1 s
    balancer = Balancer([a, b])
    first = balancer.pick(0.5, set())
    assert first is b
    assert balancer.pick(0.5, {"b"}) is None


def test_a_single_endpoint_is_always_tried_as_before_the_pool():
    (only,) = endpoints("triton:8001")
    balancer = Balancer([only])
    for step in range(5):
        only.mark_down(float(step), "refused", FIRST_S, MAX_S)
        assert balancer.pick(float(step), set()) is only


def test_the_back_off_doubles_to_its_cap_and_a_success_resets_it():
    e = Endpoint("a")
    waits = []
    for _ in range(6):
        e.mark_down(100.0, "refused", FIRST_S, MAX_S)
        waits.append(e.down_until - 100.0)
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    e.mark_up()
    assert e.is_up(100.0)
    e.mark_down(100.0, "refused", FIRST_S, MAX_S)
    assert e.down_until == 101.0


def test_the_setting_lists_endpoints_comma_separated_and_one_stays_the_default():
    assert Settings().triton_grpc_urls == ("127.0.0.1:8001",)
    env = {"SPOTON_TRITON_GRPC_URL": "triton-a:8001, triton-b:8001,"}
    assert Settings.from_env(env).triton_grpc_urls == ("triton-a:8001", "triton-b:8001")
    for bad in ("", " , ", "a:8001,a:8001"):
        with pytest.raises(ValueError, match="SPOTON_TRITON_GRPC_URL"):
            Settings(triton_grpc_url=bad)


def test_cameras_are_refused_on_every_triton_endpoint_port():
    settings = Settings(triton_grpc_url="127.0.0.1:58001,127.0.0.1:59001", source_allowed_hosts=("127.0.0.1",))
    policy = source_policy_for(settings)
    for port in (58001, 59001):
        with pytest.raises(SourceRefused, match="Triton gRPC"):
            policy.check(CameraSource.from_url(f"rtsp://127.0.0.1:{port}/live"))
    policy.check(CameraSource.from_url("rtsp://127.0.0.1:8554/live"))


def test_one_endpoint_reads_in_health_as_it_always_has():
    up = EndpointReadiness("127.0.0.1:8001", True, {"detector": True, "reid": False})
    assert triton_components([up]) == [
        ComponentHealth("triton", HEALTHY, "127.0.0.1:8001"),
        ComponentHealth("model:detector", HEALTHY),
        ComponentHealth("model:reid", FAILED),
    ]
    down = EndpointReadiness("127.0.0.1:8001", False, {"detector": False, "reid": False})
    assert [c.status for c in triton_components([down])] == [FAILED, FAILED, FAILED]
    frozen = EndpointReadiness("127.0.0.1:8001", False, {"detector": False}, "no answer within 1 s: hung or frozen")
    assert triton_components([frozen])[0].detail == "127.0.0.1:8001: no answer within 1 s: hung or frozen"


def test_several_endpoints_read_degraded_while_some_are_down_and_failed_when_all_are():
    a = EndpointReadiness("a:8001", True, {"detector": True, "reid": True})
    b = EndpointReadiness("b:8001", False, {"detector": False, "reid": False})
    both_up = triton_components([a, EndpointReadiness("b:8001", True, {"detector": True, "reid": True})])
    assert [(c.name, c.status) for c in both_up] == [
        ("triton", HEALTHY),
        ("model:detector", HEALTHY),
        ("model:reid", HEALTHY),
    ]
    one_down = {c.name: c for c in triton_components([a, b])}
    assert one_down["triton"].status == DEGRADED and "b:8001 down" in one_down["triton"].detail
    assert one_down["model:reid"] == ComponentHealth("model:reid", DEGRADED, "ready on a:8001; not on b:8001")
    all_down = triton_components([b, EndpointReadiness("a:8001", False, {"detector": False, "reid": False})])
    assert {c.status for c in all_down} == {FAILED}


async def test_requests_failures_and_state_are_exported_per_endpoint(tmp_path):
    stats = [EndpointStats("a:8001", 7, 0, True), EndpointStats("b:8001", 3, 2, False)]
    writer = TrackPointWriter(_never_called, Journal(tmp_path / "journal", 1024))
    port = pick_free_port()
    server = start_metrics_server(LOOPBACK, port, writer, LiveStats(), triton=lambda: stats)
    try:
        async with httpx.AsyncClient() as http:
            reply = await http.get(f"http://{LOOPBACK}:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    samples = {
        (s.name, s.labels.get("endpoint")): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
        if s.name.startswith("spoton_triton_")
    }
    assert samples == {
        ("spoton_triton_requests_total", "a:8001"): 7,
        ("spoton_triton_requests_total", "b:8001"): 3,
        ("spoton_triton_failures_total", "a:8001"): 0,
        ("spoton_triton_failures_total", "b:8001"): 2,
        ("spoton_triton_endpoint_up", "a:8001"): 1,
        ("spoton_triton_endpoint_up", "b:8001"): 0,
    }


async def _never_called(batch_id, rows) -> None:
    raise AssertionError("no track points are written here")
