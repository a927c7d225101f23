"""Where the stack's facade and gRPC API listen: configured ports for `spoton serve`, free ones
for stacks started for one run, a taken port refused before anything starts, and a wildcard
bind that still hands clients an address they can connect to."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from spoton_inference.embedded.endpoints import Listen
from spoton_inference.embedded.ports import PortUnavailable, pick_free_ports
from spoton_inference.embedded.stack import EmbeddedStack
from spoton_inference.settings import Settings


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port something else already listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_serve_listens_on_the_documented_defaults_or_the_configured_ones() -> None:
    assert Listen.configured(Settings.from_env({})) == Listen("127.0.0.1", 50051, "127.0.0.1", 8080)
    env = {"SPOTON_BIND_HOST": "0.0.0.0", "SPOTON_FACADE_PORT": "9080", "SPOTON_GRPC_PORT": "9051"}
    assert Listen.configured(Settings.from_env(env)) == Listen("0.0.0.0", 9051, "0.0.0.0", 9080)
    # A service-specific host wins over the bind host.
    env = {"SPOTON_BIND_HOST": "0.0.0.0", "SPOTON_GRPC_HOST": "127.0.0.1"}
    assert Listen.configured(Settings.from_env(env)) == Listen("127.0.0.1", 50051, "0.0.0.0", 8080)


def test_a_stack_for_one_run_takes_free_ports_unless_they_are_set(tmp_path: Path) -> None:
    # Not 8080 and 50051: a demo must not fight a running `spoton serve` for them.
    assert Listen.for_run(Settings.from_env({}), {}) == Listen("127.0.0.1", 0, "127.0.0.1", 0)
    env = {"SPOTON_FACADE_PORT": "9080"}
    assert Listen.for_run(Settings.from_env(env), env) == Listen("127.0.0.1", 0, "127.0.0.1", 9080)
    port_file = tmp_path / "grpc_port"
    port_file.write_text("9051\n")
    env = {"SPOTON_GRPC_PORT_FILE": str(port_file), "SPOTON_BIND_HOST": "0.0.0.0"}
    assert Listen.for_run(Settings.from_env(env), env) == Listen("0.0.0.0", 9051, "0.0.0.0", 0)


def test_a_taken_port_stops_the_stack_before_anything_starts(tmp_path: Path, held_port: int) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, facade_port=held_port)
    with pytest.raises(PortUnavailable, match=f"port {held_port} on 127.0.0.1 is already in use.*SPOTON_FACADE_PORT"):
        EmbeddedStack(settings, listen=Listen.configured(settings))
    # Nothing was set up: not even the servers' secrets were written.
    assert not data_dir.exists()

    settings = Settings(data_dir=data_dir, grpc_port=held_port)
    with pytest.raises(PortUnavailable, match="SPOTON_GRPC_PORT to a free port"):
        EmbeddedStack(settings, listen=Listen.configured(settings))
    settings = Settings(data_dir=data_dir, grpc_port=9000, facade_port=9000)
    with pytest.raises(PortUnavailable, match="SPOTON_GRPC_PORT and SPOTON_FACADE_PORT are both 9000"):
        EmbeddedStack(settings, listen=Listen.configured(settings))


def test_configured_ports_and_a_wildcard_bind_reach_children_and_clients(tmp_path: Path) -> None:
    grpc_port, facade_port = pick_free_ports(2)
    settings = Settings(data_dir=tmp_path / "data", bind_host="0.0.0.0", grpc_port=grpc_port, facade_port=facade_port)
    stack = EmbeddedStack(settings, listen=Listen.configured(settings))
    # Clients (the printed URLs, var/stack.json) get loopback: 0.0.0.0 is no address to call.
    assert stack.endpoints.facade_url == f"http://127.0.0.1:{facade_port}"
    assert stack.endpoints.grpc_target == f"127.0.0.1:{grpc_port}"
    # The services listen on every interface, and the facade calls gRPC on loopback.
    env = stack.settings.to_env()
    assert (env["SPOTON_GRPC_HOST"], env["SPOTON_GRPC_PORT"]) == ("0.0.0.0", str(grpc_port))
    assert (env["SPOTON_FACADE_HOST"], env["SPOTON_FACADE_PORT"]) == ("0.0.0.0", str(facade_port))
    assert env["SPOTON_INFERENCE_TARGET"] == f"127.0.0.1:{grpc_port}"


def test_by_default_stacks_listen_on_loopback_each_on_its_own_free_ports(tmp_path: Path) -> None:
    # What the test fixtures do, many stacks at once: none takes the fixed default ports.
    first, second = (EmbeddedStack(Settings(data_dir=tmp_path / name)) for name in ("a", "b"))
    ports = [(s.settings.grpc_port, s.settings.facade_port) for s in (first, second)]
    assert len({*ports[0], *ports[1]}) == 4
    assert first.endpoints.facade_url == f"http://127.0.0.1:{first.settings.facade_port}"
    assert first.settings.grpc_host == first.settings.facade_host == "127.0.0.1"
