"""Credentials on every call: ``authorization: Bearer <API key or access token>`` metadata,
added by a client interceptor, so raw stubs on :func:`authed_channel` carry it too.

Example:
    async with authed_channel("127.0.0.1:50051", api_key="spk_...") as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)

The key comes from the argument, else ``SPOTON_API_KEY``, else (for the local embedded stack)
the admin key its first start wrote to ``<data_dir>/secrets/admin_api_key``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

API_KEY_ENV = "SPOTON_API_KEY"
ADMIN_KEY_FILE = Path("secrets") / "admin_api_key"
ADMIN_PASSWORD_FILE = Path("secrets") / "admin_password"
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)


def auth_metadata(api_key: str | None = None, token: str | None = None) -> tuple[tuple[str, str], ...]:
    """The metadata that authenticates a call (a token wins over a key); empty without either."""
    credential = token or api_key
    return (("authorization", f"Bearer {credential}"),) if credential else ()


def resolve_api_key(api_key: str | None = None, data_dir: Path | None = None) -> str | None:
    """``api_key``, else SPOTON_API_KEY, else the admin key the stack under ``data_dir`` wrote."""
    if api_key:
        return api_key
    if os.environ.get(API_KEY_ENV):
        return os.environ[API_KEY_ENV]
    if data_dir is not None:
        try:
            return (data_dir / ADMIN_KEY_FILE).read_text().strip() or None
        except (FileNotFoundError, PermissionError):
            return None
    return None


class _AddMetadata:
    """Adds the credential to a call's metadata, unless the call carries its own."""

    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self.metadata = tuple(metadata)

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        own = grpc.aio.Metadata(*(details.metadata or ()))
        if "authorization" not in own and "x-api-key" not in own:
            for key, value in self.metadata:
                own.add(key, value)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, own, details.credentials, details.wait_for_ready
        )


# One class per call shape: grpc.aio files an interceptor under the first shape it is an
# instance of, so one object subclassing all four would see unary calls only.
class _UnaryUnary(_AddMetadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStream(_AddMetadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamUnary(_AddMetadata, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStream(_AddMetadata, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


def auth_interceptors(metadata: Sequence[tuple[str, str]]) -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors adding ``metadata`` (see :func:`auth_metadata`) to every call."""
    return [kind(metadata) for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]


def how_to_authenticate(data_dir: Path) -> str:
    """A line telling a user of the local stack where its admin key is and how to send it."""
    path = data_dir / ADMIN_KEY_FILE
    password = data_dir / ADMIN_PASSWORD_FILE
    return (
        f"admin API key in {path} (or SPOTON_ADMIN_API_KEY); send it as gRPC metadata "
        f"'authorization: Bearer <key>', or: export SPOTON_API_KEY=$(cat {path}); "
        f"dashboard login: admin, password in {password}"
    )


def authed_channel(
    target: str,
    api_key: str | None = None,
    token: str | None = None,
    options: Sequence[tuple[str, Any]] = CHANNEL_OPTIONS,
) -> grpc.aio.Channel:
    """A channel whose every call carries ``api_key`` (or ``token``, or SPOTON_API_KEY)."""
    metadata = auth_metadata(resolve_api_key(api_key), token)
    interceptors = auth_interceptors(metadata) if metadata else None
    return grpc.aio.insecure_channel(target, options=list(options), interceptors=interceptors)
