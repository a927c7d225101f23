"""Where camera sources may point: not at loopback or link-local hosts unless allowed, never at
the service's own ports (host names resolved first)."""

from __future__ import annotations

import pytest

from spoton_inference.app import source_policy_for
from spoton_inference.domain.camera_source import CameraSource
from spoton_inference.services.source_policy import SourcePolicy, SourceRefused
from spoton_inference.settings import Settings


def _check(policy: SourcePolicy, url: str) -> None:
    policy.check(CameraSource.from_url(url))


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://127.0.0.1:8554/live",
        "http://localhost:9999/x",  # a name resolving to loopback is loopback
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata: link-local
        "rtsp://[::1]/live",
        "rtsp://[::ffff:127.0.0.1]/live",
        "http://0.0.0.0:8080/",
        "http://127.1/",  # another spelling of 127.0.0.1
    ],
)
def test_loopback_and_link_local_hosts_are_refused_by_default(url):
    with pytest.raises(SourceRefused, match="SPOTON_SOURCE_ALLOWED_HOSTS") as err:
        _check(SourcePolicy(), url)
    assert err.value.errors[0][0] == "source.url"


def test_cameras_on_private_networks_and_names_not_resolving_yet_are_accepted():
    for url in ("rtsp://10.0.0.5/live", "rtsp://192.168.1.20:554/s", "https://cam.invalid/mjpeg"):
        _check(SourcePolicy(), url)


def test_allowed_hosts_by_address_network_or_name():
    _check(SourcePolicy.build(["127.0.0.1"], []), "rtsp://127.0.0.1:8554/live")
    _check(SourcePolicy.build(["127.0.0.0/8"], []), "rtsp://127.0.0.2/live")
    _check(SourcePolicy.build(["localhost"], []), "rtsp://localhost/live")
    with pytest.raises(SourceRefused):
        _check(SourcePolicy.build(["127.0.0.1"], []), "http://169.254.169.254/")


def test_the_service_own_ports_are_refused_even_on_an_allowed_host():
    settings = Settings(
        postgres_dsn="postgresql://postgres:pw@127.0.0.1:55432/spoton",
        redis_url="redis://:pw@127.0.0.1:56379/0",
        metrics_port=59464,
        source_allowed_hosts=("127.0.0.1",),
    )
    policy = source_policy_for(settings)
    for port, name in [(55432, "PostgreSQL"), (56379, "Redis"), (settings.grpc_port, "gRPC"), (59464, "metrics")]:
        with pytest.raises(SourceRefused, match=name):
            _check(policy, f"http://127.0.0.1:{port}/x")
        with pytest.raises(SourceRefused, match=name):
            _check(policy, f"rtsp://localhost:{port}/x")
    _check(policy, "rtsp://127.0.0.1:8554/live")  # the allowed host, another port
    _check(policy, "rtsp://10.0.0.5:55432/live")  # the same port on another machine
