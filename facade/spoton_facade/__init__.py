"""SpotOn facade: a thin Litestar app turning the inference service's gRPC API into REST, SSE
and media downloads. It holds no business logic: every route is a gRPC call plus a
translation, or a file read from the media root.
"""

from spoton_facade.app import create_app

__all__ = ["create_app"]
