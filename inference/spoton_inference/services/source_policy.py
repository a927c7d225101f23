"""Where a camera source may point, so the server cannot be used to probe its own network.

A live source (rtsp, rtsps, http, https) is refused when its host resolves to:

- a loopback, link-local (cloud metadata services live there), unspecified or multicast
  address, unless the host is in ``SPOTON_SOURCE_ALLOWED_HOSTS`` (names, addresses or CIDR
  networks: the embedded demo's and the tests' local cameras on 127.0.0.1 are allowed there);
- one of this service's own ports (gRPC, facade, metrics, PostgreSQL, Redis, Triton) on a
  local address or on the host that serves that port, even when the host is allowed.

Private networks (10/8, 192.168/16...) stay allowed: that is where cameras are. Host names are
resolved before deciding (a name resolving to loopback is loopback). The check runs when a
source is stored and again right before each connection (test, snapshot, health check, live
pull), so a name that later re-resolves to a refused address (DNS rebinding) is caught then; a
name that does not resolve yet is accepted at registration and checked when it is opened.
The remaining window is between this check and FFmpeg's own lookup, milliseconds apart.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import urllib.parse
from collections.abc import Iterable, Sequence

from spoton_inference.domain.camera_source import DEFAULT_PORTS, CameraSource
from spoton_inference.domain.errors import InvalidFields

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# A probe result's error kind for a source the policy refused (it was never called).
REFUSED_BY_POLICY = "refused_by_policy"
# Bind addresses meaning "every local address": the port is ours on any local address.
_ANY_HOSTS = {"", "0.0.0.0", "::", "*"}


class SourceRefused(InvalidFields):
    """The source points where the policy refuses (INVALID_ARGUMENT, naming source.url)."""

    def __init__(self, message: str) -> None:
        super().__init__("source", [("source.url", message)])


@dataclasses.dataclass(frozen=True, slots=True)
class OwnPort:
    """A port this service (or a part of it) listens on, and the addresses it does on."""

    name: str
    port: int
    # Empty: every local address (a 0.0.0.0 bind, or a host that did not resolve).
    addresses: frozenset[IPAddress] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class SourcePolicy:
    allowed_names: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    own_ports: tuple[OwnPort, ...] = ()

    @classmethod
    def build(cls, allowed_hosts: Sequence[str], own: Iterable[tuple[str, str, int]]) -> SourcePolicy:
        """``allowed_hosts``: names, addresses, CIDRs; ``own``: (what, host, port) the service uses."""
        names, networks = set(), []
        for entry in allowed_hosts:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                names.add(entry.strip().lower().rstrip("."))
        ports = tuple(
            OwnPort(what, port, frozenset() if host in _ANY_HOSTS else frozenset(_resolve(host)))
            for what, host, port in own
            if port
        )
        return cls(frozenset(names), tuple(networks), ports)

    def check(self, source: CameraSource) -> None:
        """SourceRefused when ``source`` points where it may not. Blocking (resolves the host):
        from async code run it in a worker thread."""
        if not source.is_live or not source.url:
            return
        parts = urllib.parse.urlsplit(source.url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise SourceRefused("source.url must start with rtsp://, rtsps://, http:// or https://")
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port or DEFAULT_PORTS[scheme]
        addresses = _resolve(host)
        for own in self.own_ports:
            if port == own.port and any(_is_local(a) or a in own.addresses for a in addresses):
                raise SourceRefused(
                    f"source.url points at port {port} of this server, which its {own.name} uses: "
                    "a camera source may not reach the service's own ports"
                )
        if host in self.allowed_names:
            return
        for address in addresses:
            if _is_local(address) and not any(address in net for net in self.allowed_networks):
                raise SourceRefused(
                    f"source.url host {host!r} is a loopback, link-local, unspecified or multicast address "
                    f"({address}); such sources are refused unless the host is in SPOTON_SOURCE_ALLOWED_HOSTS"
                )


def _is_local(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast


def _resolve(host: str) -> list[IPAddress]:
    """Every address ``host`` resolves to; [] when it does not (yet)."""
    try:
        return [ipaddress.ip_address(host.strip("[]").split("%")[0])]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    found = []
    for *_, sockaddr in infos:
        try:
            found.append(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]))
        except ValueError:
            continue
    return found
