"""Free-port picking on the loopback interface, and fixed ports claimed with a usable error."""

from __future__ import annotations

import socket

import pytest

from spoton_inference.embedded.ports import (
    LOOPBACK,
    PortUnavailable,
    claim_port,
    pick_free_port,
    pick_free_ports,
    port_is_free,
)


def test_picks_are_distinct_bindable_and_never_repeated() -> None:
    first = pick_free_ports(5)
    second = [*pick_free_ports(5), pick_free_port()]
    assert len(set(first + second)) == 11
    assert all(port_is_free(port) for port in first + second)


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)


def test_a_taken_port_is_refused_naming_the_setting_to_change() -> None:
    # A server on every interface takes the port on loopback too.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortUnavailable) as refused:
            claim_port(port, LOOPBACK, what="facade", setting="SPOTON_FACADE_PORT")
    assert str(refused.value) == (
        f"port {port} on 127.0.0.1 is already in use, so the facade cannot listen there: "
        "stop what uses it, or set SPOTON_FACADE_PORT to a free port"
    )


def test_a_free_fixed_port_is_claimed_and_kept_from_free_picks() -> None:
    port = pick_free_port()
    assert claim_port(port, LOOPBACK, what="gRPC API", setting="SPOTON_GRPC_PORT") == port
    assert port not in pick_free_ports(200)
    picked = claim_port(0, LOOPBACK, what="gRPC API", setting="SPOTON_GRPC_PORT")
    assert picked != port and port_is_free(picked)


def test_an_address_this_machine_lacks_or_a_bad_port_names_the_setting() -> None:
    # 192.0.2.0/24 is TEST-NET-1: documentation only, on no interface here.
    with pytest.raises(PortUnavailable, match="set SPOTON_BIND_HOST to an address of this machine"):
        claim_port(pick_free_port(), "192.0.2.1", what="facade", setting="SPOTON_FACADE_PORT")
    with pytest.raises(PortUnavailable, match="SPOTON_GRPC_PORT=70000 is not a TCP port"):
        claim_port(70000, LOOPBACK, what="gRPC API", setting="SPOTON_GRPC_PORT")
