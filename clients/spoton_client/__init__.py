"""SpotOn's Python client: a small wrapper over the spoton.v1 gRPC API, and the `spoton` CLI."""

from spoton_client.client import SpotOnClient

__all__ = ["SpotOnClient"]
