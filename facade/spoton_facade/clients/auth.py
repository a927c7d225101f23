"""``spoton.v1.AuthService`` as the facade calls it: one method per RPC, with deadlines."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from spoton.v1 import auth_pb2, auth_pb2_grpc
from spoton_facade.clients.inference import UNARY_TIMEOUT_S, Metadata


class AuthClient:
    """Thin async wrapper over the AuthService stub; ``metadata`` (the caller's credential) goes
    on every call but Login, which takes a password instead."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Metadata = ()) -> None:
        self._metadata = tuple(metadata)
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)

    async def login(self, username: str, password: str) -> auth_pb2.LoginResponse:
        request = auth_pb2.LoginRequest(username=username, password=password)
        return await self._stub.Login(request, timeout=UNARY_TIMEOUT_S)

    async def who_am_i(self) -> auth_pb2.Principal:
        return await self._stub.WhoAmI(auth_pb2.WhoAmIRequest(), timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def create_api_key(self, request: auth_pb2.CreateApiKeyRequest) -> auth_pb2.CreateApiKeyResponse:
        return await self._stub.CreateApiKey(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def list_api_keys(self) -> auth_pb2.ListApiKeysResponse:
        request = auth_pb2.ListApiKeysRequest()
        return await self._stub.ListApiKeys(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def revoke_api_key(self, key_id: str) -> None:
        request = auth_pb2.RevokeApiKeyRequest(key_id=key_id)
        await self._stub.RevokeApiKey(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def create_user(
        self, username: str, password: str, role: int, environment_ids: Sequence[str]
    ) -> auth_pb2.User:
        request = auth_pb2.CreateUserRequest(
            username=username, password=password, role=role, environment_ids=environment_ids
        )
        return await self._stub.CreateUser(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def list_users(self) -> auth_pb2.ListUsersResponse:
        request = auth_pb2.ListUsersRequest()
        return await self._stub.ListUsers(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def delete_user(self, username: str) -> None:
        request = auth_pb2.DeleteUserRequest(username=username)
        await self._stub.DeleteUser(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)

    async def list_audit_events(
        self, page_size: int, page_token: str, actor: str, action: str
    ) -> auth_pb2.ListAuditEventsResponse:
        request = auth_pb2.ListAuditEventsRequest(
            page_size=page_size, page_token=page_token, actor=actor, action=action
        )
        return await self._stub.ListAuditEvents(request, timeout=UNARY_TIMEOUT_S, metadata=self._metadata)
