"""Where a sink may point: the URL checks of webhooks and MQTT brokers, SSRF included.

A webhook makes this server send requests to a URL a user chose, so it could probe the
server's own network. The rule is services/source_policy.py's, applied with its own allow-list:
a host resolving to a loopback, link-local (cloud metadata), unspecified or multicast address
is refused unless it is in ``SPOTON_SINK_ALLOWED_HOSTS``, and every port of the service itself
(gRPC, facade, metrics, PostgreSQL, Redis, Triton) is refused on a local address even then.
Private networks stay allowed: receivers inside a site's LAN are the point.

The check runs when a sink is stored and again before every delivery (a name re-resolving to
a refused address later, DNS rebinding, is caught then). Redirects are never followed.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Sequence

from spoton_inference.domain.errors import InvalidFields
from spoton_inference.services.sinks import SinkKind
from spoton_inference.services.source_policy import SourcePolicy, _is_local, _resolve

SCHEMES = {SinkKind.WEBHOOK: {"http": 80, "https": 443}, SinkKind.MQTT: {"mqtt": 1883, "mqtts": 8883}}
MAX_URL_CHARS = 2048


class SinkRefused(InvalidFields):
    """The sink's URL is malformed or points where the policy refuses (INVALID_ARGUMENT, field url)."""

    def __init__(self, message: str) -> None:
        super().__init__("sink", [("url", message)])


@dataclasses.dataclass(frozen=True, slots=True)
class SinkPolicy:
    policy: SourcePolicy

    @classmethod
    def build(cls, allowed_hosts: Sequence[str], own: SourcePolicy) -> SinkPolicy:
        """The policy of ``allowed_hosts`` (SPOTON_SINK_ALLOWED_HOSTS) refusing ``own``'s ports:
        the service's own (a camera's policy holds them)."""
        return cls(dataclasses.replace(SourcePolicy.build(allowed_hosts, ()), own_ports=own.own_ports))

    def check_form(self, kind: SinkKind, url: str) -> str:
        """The URL, stripped, once its form suits ``kind`` (no network access): scheme, host,
        no credentials (the password is the sink's secret), no fragment."""
        url = url.strip()
        schemes = SCHEMES[kind]
        names = " or ".join(f"{s}://" for s in schemes)
        if not url:
            raise SinkRefused(f"url is required: {names}...")
        if len(url) > MAX_URL_CHARS:
            raise SinkRefused(f"url is longer than {MAX_URL_CHARS} characters")
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 (raises ValueError for a bad port)
        except ValueError:
            raise SinkRefused("url is not a valid URL (check the host and port)") from None
        if parts.scheme.lower() not in schemes:
            raise SinkRefused(f"a {kind.value} sink's url must start with {names}, got {url[:80]!r}")
        if not parts.hostname:
            raise SinkRefused(f"url {url[:80]!r} names no host")
        if parts.password is not None or (kind is SinkKind.WEBHOOK and parts.username is not None):
            raise SinkRefused("url must not carry credentials: give the secret in the secret field")
        if parts.fragment:
            raise SinkRefused("url must not have a #fragment")
        return url

    def check_target(self, kind: SinkKind, url: str) -> None:
        """SinkRefused when the URL's host resolves where the policy refuses. Blocking (resolves
        the host): from async code run it in a worker thread."""
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port or SCHEMES[kind][parts.scheme.lower()]
        addresses = _resolve(host)
        for own in self.policy.own_ports:
            if port == own.port and any(_is_local(a) or a in own.addresses for a in addresses):
                raise SinkRefused(
                    f"url points at port {port} of this server, which its {own.name} uses: "
                    "a sink may not reach the service's own ports"
                )
        if host in self.policy.allowed_names:
            return
        for address in addresses:
            if _is_local(address) and not any(address in net for net in self.policy.allowed_networks):
                raise SinkRefused(
                    f"url host {host!r} is a loopback, link-local, unspecified or multicast address ({address}); "
                    "such sinks are refused unless the host is in SPOTON_SINK_ALLOWED_HOSTS"
                )
