"""Credentials for tests: the admin key every test stack runs with, channels that carry a
key, and principals of each role.

``from support.auth import ADMIN_API_KEY, authed_channel, make_key`` (tests/conftest.py puts
tests/ on sys.path).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from spoton.v1 import auth_pb2, auth_pb2_grpc
from spoton_client.auth import authed_channel as _authed_channel
from spoton_inference.services.auth import new_api_key

# The bootstrap admin key (SPOTON_ADMIN_API_KEY) of every stack the tests start: fresh for
# each test session, never a constant a deployment could copy.
ADMIN_API_KEY = new_api_key().text

ROLES = {"viewer": auth_pb2.ROLE_VIEWER, "operator": auth_pb2.ROLE_OPERATOR, "admin": auth_pb2.ROLE_ADMIN}


def authed_channel(target: str, key: str = ADMIN_API_KEY) -> grpc.aio.Channel:
    """A channel to ``target`` whose every call carries ``key`` (the admin key by default)."""
    return _authed_channel(target, api_key=key)


def admin_metadata(key: str = ADMIN_API_KEY) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def make_key(
    target: str,
    role: str,
    environments: Iterable[str] = (),
    *,
    admin_key: str = ADMIN_API_KEY,
    name: str = "",
    expires_at: dt.datetime | None = None,
) -> str:
    """A new API key of ``role`` ("viewer", "operator" or "admin"), limited to ``environments``
    (none: all), created through AuthService/CreateApiKey as the admin; its full text."""
    request = auth_pb2.CreateApiKeyRequest(
        name=name or f"test {role}", role=ROLES[role], environment_ids=list(environments)
    )
    if expires_at is not None:
        ts = Timestamp()
        ts.FromDatetime(expires_at)
        request.expires_at.CopyFrom(ts)
    async with authed_channel(target, admin_key) as channel:
        response = await auth_pb2_grpc.AuthServiceStub(channel).CreateApiKey(request, timeout=10)
    return response.secret


async def make_user(
    target: str,
    username: str,
    password: str,
    role: str,
    environments: Iterable[str] = (),
    *,
    admin_key: str = ADMIN_API_KEY,
) -> None:
    request = auth_pb2.CreateUserRequest(
        username=username, password=password, role=ROLES[role], environment_ids=list(environments)
    )
    async with authed_channel(target, admin_key) as channel:
        await auth_pb2_grpc.AuthServiceStub(channel).CreateUser(request, timeout=10)


async def login(target: str, username: str, password: str) -> auth_pb2.LoginResponse:
    async with grpc.aio.insecure_channel(target) as channel:
        return await auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(username=username, password=password), timeout=10
        )


def admin_headers(key: str = ADMIN_API_KEY) -> dict[str, str]:
    """HTTP headers carrying ``key`` to the facade, which forwards it to the service."""
    return {"Authorization": f"Bearer {key}"}
