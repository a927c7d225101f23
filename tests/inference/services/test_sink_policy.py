"""Where a sink may point (services/sink_policy.py): URL form per kind, and the SSRF rule."""

from __future__ import annotations

import pytest

from spoton_inference.app import sink_policy_for
from spoton_inference.services.sink_policy import SinkPolicy, SinkRefused
from spoton_inference.services.sinks import SinkKind
from spoton_inference.settings import Settings

WEBHOOK, MQTT = SinkKind.WEBHOOK, SinkKind.MQTT


def _policy(**overrides) -> SinkPolicy:
    return sink_policy_for(Settings(**overrides))


@pytest.mark.parametrize(
    ("kind", "url", "words"),
    [
        (WEBHOOK, "", "url is required"),
        (WEBHOOK, "ftp://example.com/x", "must start with http:// or https://"),
        (WEBHOOK, "mqtt://example.com", "must start with http:// or https://"),
        (MQTT, "https://example.com", "must start with mqtt:// or mqtts://"),
        (WEBHOOK, "https:///path", "names no host"),
        (WEBHOOK, "https://example.com:99999/", "not a valid URL"),
        (WEBHOOK, "https://user:pw@example.com/", "credentials"),
        (WEBHOOK, "https://user@example.com/", "credentials"),
        (MQTT, "mqtt://user:pw@broker:1883", "credentials"),
        (WEBHOOK, "https://example.com/#x", "fragment"),
        (WEBHOOK, "https://example.com/" + "a" * 2100, "longer than"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(kind, url, words) -> None:
    with pytest.raises(SinkRefused, match=words):
        _policy().check_form(kind, url)


def test_well_formed_urls_are_kept() -> None:
    policy = _policy()
    assert (
        policy.check_form(WEBHOOK, "  https://hooks.example.com/spoton?x=1 ") == "https://hooks.example.com/spoton?x=1"
    )
    assert policy.check_form(MQTT, "mqtts://spoton@broker.example.com") == "mqtts://spoton@broker.example.com"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9000/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://0.0.0.0/"],
)
def test_loopback_and_link_local_targets_are_refused_unless_allowed(url) -> None:
    with pytest.raises(SinkRefused, match="SPOTON_SINK_ALLOWED_HOSTS"):
        _policy().check_target(WEBHOOK, url)


def test_allowed_hosts_open_loopback_but_never_the_service_own_ports() -> None:
    policy = _policy(sink_allowed_hosts=("127.0.0.0/8",), grpc_port=50051, metrics_port=9464)
    policy.check_target(WEBHOOK, "http://127.0.0.1:9000/hook")
    for port, what in ((50051, "gRPC API"), (9464, "metrics"), (8080, "REST facade")):
        with pytest.raises(SinkRefused, match=f"port {port} of this server, which its {what} uses"):
            policy.check_target(WEBHOOK, f"http://127.0.0.1:{port}/")


def test_private_networks_stay_allowed() -> None:
    _policy().check_target(WEBHOOK, "http://10.0.0.7:8000/hook")
    _policy().check_target(MQTT, "mqtt://192.168.1.20")
