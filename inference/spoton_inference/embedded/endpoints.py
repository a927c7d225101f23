"""Where the embedded stack's services listen, and how that maps onto :class:`Settings`.

The facade and the gRPC API listen where :class:`Listen` says (``SPOTON_BIND_HOST``, by
default loopback only); the URLs handed to clients (printed, and in ``var/stack.json``)
always name an address a client on this machine can connect to:

    >>> client_host("0.0.0.0"), client_host("::"), client_host("192.168.1.20")
    ('127.0.0.1', '::1', '192.168.1.20')
    >>> host_port("::1", 50051)
    '[::1]:50051'
    >>> local_url("0.0.0.0", 8080)
    'http://127.0.0.1:8080'
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from spoton_inference.embedded.ports import PortUnavailable, claim_port
from spoton_inference.settings import FILE_SUFFIX, Settings, env_name


def client_host(bind_host: str) -> str:
    """The address a local client connects to for a server bound to ``bind_host``: loopback
    for a wildcard bind (every interface), else ``bind_host`` itself."""
    try:
        address = ipaddress.ip_address(bind_host)
    except ValueError:
        return bind_host or "127.0.0.1"  # a name, such as localhost; "" binds every interface
    if not address.is_unspecified:
        return bind_host
    return "::1" if address.version == 6 else "127.0.0.1"


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets as URLs and gRPC targets need."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def local_url(bind_host: str, port: int) -> str:
    """The ``http://`` URL a local client uses for a web server bound to ``bind_host:port``."""
    return f"http://{host_port(client_host(bind_host), port)}"


@dataclasses.dataclass(frozen=True, slots=True)
class Listen:
    """Where the stack's public servers listen: the gRPC API and the facade. Port 0 means a
    free port picked when the stack is built; any other is claimed then, or refused with a
    message naming the setting to change (:class:`~spoton_inference.embedded.ports.PortUnavailable`).
    """

    grpc_host: str
    grpc_port: int
    facade_host: str
    facade_port: int

    @classmethod
    def configured(cls, settings: Settings) -> Listen:
        """The settings' hosts and ports, defaults included: what ``spoton serve`` uses."""
        return cls(settings.grpc_host, settings.grpc_port, settings.facade_host, settings.facade_port)

    @classmethod
    def free(cls, settings: Settings) -> Listen:
        """The settings' hosts on free ports: a stack that never collides with another."""
        return cls(settings.grpc_host, 0, settings.facade_host, 0)

    @classmethod
    def for_run(cls, settings: Settings, env: Mapping[str, str]) -> Listen:
        """Free ports, except those ``env`` sets explicitly: for a stack started for one run
        (``spoton demo``, ``spoton process``), which must not take the ports ``spoton serve``
        uses by default."""

        def given(field: str, port: int) -> int:
            name = env_name(field)
            return port if name in env or name + FILE_SUFFIX in env else 0

        return dataclasses.replace(
            cls.configured(settings),
            grpc_port=given("grpc_port", settings.grpc_port),
            facade_port=given("facade_port", settings.facade_port),
        )

    def claim(self) -> tuple[int, int]:
        """The gRPC and facade ports, fixed ones checked and kept from later free-port picks."""
        if self.grpc_port and self.grpc_port == self.facade_port:
            raise PortUnavailable(
                f"SPOTON_GRPC_PORT and SPOTON_FACADE_PORT are both {self.grpc_port}: give them different ports"
            )
        grpc_port = claim_port(self.grpc_port, self.grpc_host, what="gRPC API", setting=env_name("grpc_port"))
        facade_port = claim_port(self.facade_port, self.facade_host, what="facade", setting=env_name("facade_port"))
        return grpc_port, facade_port


def _host_port(address: str) -> tuple[str, int]:
    """Host and port of a URL (``scheme://host:port/...``) or a bare ``host:port`` target."""
    parts = urlsplit(address if "://" in address else f"//{address}")
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"{address!r} has no host:port")
    return parts.hostname, parts.port


@dataclasses.dataclass(frozen=True, slots=True)
class StackEndpoints:
    facade_url: str
    grpc_target: str
    triton_grpc_url: str
    triton_http_url: str
    postgres_dsn: str
    redis_url: str

    def apply_to(self, settings: Settings) -> Settings:
        """``settings`` with every endpoint filled in, for children via ``to_env()``; the
        listen hosts stay the settings' own (a wildcard bind is no address to connect to)."""
        _, grpc_port = _host_port(self.grpc_target)
        _, facade_port = _host_port(self.facade_url)
        return dataclasses.replace(
            settings,
            grpc_port=grpc_port,
            inference_target=self.grpc_target,
            facade_port=facade_port,
            triton_grpc_url=self.triton_grpc_url,
            triton_http_url=self.triton_http_url,
            postgres_dsn=self.postgres_dsn,
            redis_url=self.redis_url,
        )

    def tcp_addresses(self) -> dict[str, tuple[str, int]]:
        """Each endpoint's host and port, by field name, for liveness checks."""
        return {field.name: _host_port(getattr(self, field.name)) for field in dataclasses.fields(self)}
