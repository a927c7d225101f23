"""Network addresses as text: pure formatting, shared by the embedded stack and the gRPC server.

Example:
    >>> host_port("::1", 50051), host_port("127.0.0.1", 50051)
    ('[::1]:50051', '127.0.0.1:50051')
"""

from __future__ import annotations


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets as URLs and gRPC targets need."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
