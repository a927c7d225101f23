"""TCP ports for the embedded servers: free ones on the loopback interface, or fixed ones
claimed up front with an error a user can act on.

The kernel hands out a free port when a socket binds port 0. Two precautions keep several
picks from colliding: all sockets of one call stay bound until every port is known (so
the kernel cannot return the same port twice), and ports handed out or claimed earlier in
this process are remembered and skipped (a server may not have bound its port yet).
"""

from __future__ import annotations

import errno
import socket
import threading

LOOPBACK = "127.0.0.1"

_handed_out: set[int] = set()
_lock = threading.Lock()


def pick_free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return ``count`` distinct ports that are free on ``host`` and not handed out before."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        with _lock:
            while len(ports) < count:
                sock = socket.socket(_family(host), socket.SOCK_STREAM)
                held.append(sock)
                sock.bind((host, 0))
                port = sock.getsockname()[1]
                if port not in _handed_out:
                    ports.append(port)
            _handed_out.update(ports)
    finally:
        for sock in held:
            sock.close()
    return ports


def pick_free_port(host: str = LOOPBACK) -> int:
    """Return one free port on ``host``; see :func:`pick_free_ports`."""
    return pick_free_ports(1, host)[0]


def bind_error(port: int, host: str = LOOPBACK) -> OSError | None:
    """Why a server could not bind ``host:port`` right now, or None when it could."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        # Without SO_REUSEADDR a port in TIME_WAIT would look busy although a server
        # (which sets it) could bind it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when nothing listens on ``host:port`` and it can be bound right now."""
    return bind_error(port, host) is None


class PortUnavailable(RuntimeError):
    """A fixed port cannot be listened on; the message names the setting to change."""


MAX_PORT = 65535


def claim_port(port: int, host: str, *, what: str, setting: str) -> int:
    """``port`` on ``host`` for ``what`` if a server can bind it now (0: a free port), kept from
    later free-port picks in this process; :class:`PortUnavailable` saying what to change if not.

    ``setting`` is the environment variable that chose ``port`` (``SPOTON_FACADE_PORT``).
    """
    if port == 0:
        return pick_free_port(host)
    if not 0 < port <= MAX_PORT:
        raise PortUnavailable(f"{setting}={port} is not a TCP port: give one from 1 to {MAX_PORT}")
    error = bind_error(port, host)
    if error is not None and error.errno == errno.EADDRINUSE:
        raise PortUnavailable(
            f"port {port} on {host} is already in use, so the {what} cannot listen there: "
            f"stop what uses it, or set {setting} to a free port"
        )
    if error is not None:
        raise PortUnavailable(
            f"the {what} cannot listen on {host}:{port} ({error.strerror}): "
            f"set SPOTON_BIND_HOST to an address of this machine (127.0.0.1 or 0.0.0.0), or {setting} to another port"
        )
    with _lock:
        _handed_out.add(port)
    return port


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
