"""Where the embedded stack's services listen, and how that maps onto the settings.

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
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import urlsplit

from spoton_inference.domain.network import host_port
from spoton_inference.embedded.ports import PortUnavailable, claim_port

# The settings that fix the public ports, as the environment names them (Settings.from_env:
# SPOTON_<FIELD>, or SPOTON_<FIELD>_FILE naming a file that holds the value).
GRPC_PORT_SETTING = "SPOTON_GRPC_PORT"
FACADE_PORT_SETTING = "SPOTON_FACADE_PORT"
FILE_SUFFIX = "_FILE"


class ListenSettings(Protocol):
    """Where the settings say the public servers listen (the root's Settings has these)."""

    @property
    def grpc_host(self) -> str: ...
    @property
    def grpc_port(self) -> int: ...
    @property
    def facade_host(self) -> str: ...
    @property
    def facade_port(self) -> int: ...


class EndpointSettings(ListenSettings, Protocol):
    """Settings a stack's endpoints are filled into: a dataclass (copied with dataclasses.replace)
    with the endpoint fields of :meth:`StackEndpoints.apply_to`, such as the root's Settings."""

    __dataclass_fields__: ClassVar[dict[str, Any]]


E = TypeVar("E", bound=EndpointSettings)


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
    def configured(cls, settings: ListenSettings) -> Listen:
        """The settings' hosts and ports, defaults included: what ``spoton serve`` uses."""
        return cls(settings.grpc_host, settings.grpc_port, settings.facade_host, settings.facade_port)

    @classmethod
    def free(cls, settings: ListenSettings) -> Listen:
        """The settings' hosts on free ports: a stack that never collides with another."""
        return cls(settings.grpc_host, 0, settings.facade_host, 0)

    @classmethod
    def for_run(cls, settings: ListenSettings, env: Mapping[str, str]) -> Listen:
        """Free ports, except those ``env`` sets explicitly: for a stack started for one run
        (``spoton demo``, ``spoton process``), which must not take the ports ``spoton serve``
        uses by default."""

        def given(name: str, port: int) -> int:
            return port if name in env or name + FILE_SUFFIX in env else 0

        return dataclasses.replace(
            cls.configured(settings),
            grpc_port=given(GRPC_PORT_SETTING, settings.grpc_port),
            facade_port=given(FACADE_PORT_SETTING, settings.facade_port),
        )

    def claim(self) -> tuple[int, int]:
        """The gRPC and facade ports, fixed ones checked and kept from later free-port picks."""
        if self.grpc_port and self.grpc_port == self.facade_port:
            raise PortUnavailable(
                f"SPOTON_GRPC_PORT and SPOTON_FACADE_PORT are both {self.grpc_port}: give them different ports"
            )
        grpc_port = claim_port(self.grpc_port, self.grpc_host, what="gRPC API", setting=GRPC_PORT_SETTING)
        facade_port = claim_port(self.facade_port, self.facade_host, what="facade", setting=FACADE_PORT_SETTING)
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

    def apply_to(self, settings: E) -> E:
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
