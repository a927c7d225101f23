"""Where the embedded stack's services listen, and how that maps onto :class:`Settings`."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from spoton_inference.settings import Settings


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
        """``settings`` with every endpoint filled in, for children via ``to_env()``."""
        grpc_host, grpc_port = _host_port(self.grpc_target)
        facade_host, facade_port = _host_port(self.facade_url)
        return dataclasses.replace(
            settings,
            grpc_host=grpc_host,
            grpc_port=grpc_port,
            inference_target=self.grpc_target,
            facade_host=facade_host,
            facade_port=facade_port,
            triton_grpc_url=self.triton_grpc_url,
            triton_http_url=self.triton_http_url,
            postgres_dsn=self.postgres_dsn,
            redis_url=self.redis_url,
        )

    def tcp_addresses(self) -> dict[str, tuple[str, int]]:
        """Each endpoint's host and port, by field name, for liveness checks."""
        return {field.name: _host_port(getattr(self, field.name)) for field in dataclasses.fields(self)}
