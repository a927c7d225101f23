"""Free-port picking on the loopback interface."""

from __future__ import annotations

import socket

from spoton_inference.embedded.ports import pick_free_port, pick_free_ports, port_is_free


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
