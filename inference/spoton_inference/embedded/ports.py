"""Free TCP ports on the loopback interface for the embedded servers.

The kernel hands out a free port when a socket binds port 0. Two precautions keep several
picks from colliding: all sockets of one call stay bound until every port is known (so
the kernel cannot return the same port twice), and ports handed out earlier in this
process are remembered and skipped (a server may not have bound its port yet).
"""

from __future__ import annotations

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
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when nothing listens on ``host:port`` and it can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Without SO_REUSEADDR a port in TIME_WAIT would look busy although a server
        # (which sets it) could bind it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
