"""spoton.v1.AuthService: login, who am I, API keys, users and the audit log.

Secrets leave only once: a new key's full text in CreateApiKey's answer. Nothing else here
carries a secret or a hash.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from spoton.v1 import auth_pb2, auth_pb2_grpc
from spoton_inference.domain.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from spoton_inference.domain.principal import Principal, Role, current_principal
from spoton_inference.grpc_api.errors import unary
from spoton_inference.services.audit import Audit, AuditAction, failed, run_audited
from spoton_inference.services.auth import ApiKeyRecord, Authenticator, User

# A failed login names the username it tried, cut to this length.
MAX_NAME_CHARS = 64


def role_to_proto(role: Role) -> auth_pb2.Role.ValueType:
    return int(role)  # the proto enum's numbers are the domain's


def role_from_proto(value: int, field: str = "role") -> Role:
    if value == auth_pb2.ROLE_UNSPECIFIED:
        raise InvalidArgument(f"{field} is required: ROLE_VIEWER, ROLE_OPERATOR or ROLE_ADMIN")
    return Role(value)


def _timestamp(at: dt.datetime | None) -> Timestamp | None:
    if at is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


def _environments(ids: Iterable[str]) -> list[str]:
    cleaned = sorted({i.strip() for i in ids})
    if "" in cleaned:
        raise InvalidArgument("environment_ids holds an empty id")
    return cleaned


def _within_caller(environments: list[str]) -> list[str]:
    """``environments``, if the caller may hand them out: a caller limited to some
    environments cannot create a credential that sees more than it does."""
    caller = current_principal()
    if caller.environments and (not environments or not set(environments) <= caller.environments):
        raise PermissionDenied(
            f"{caller.subject!r} is limited to environments {sorted(caller.environments)}: a credential it "
            "creates must name some of those in environment_ids"
        )
    return environments


def principal_to_proto(principal: Principal) -> auth_pb2.Principal:
    return auth_pb2.Principal(
        subject=principal.subject,
        role=role_to_proto(principal.role),
        environment_ids=sorted(principal.environments),
        kind=principal.kind,
        credential_id=principal.credential_id,
    )


def api_key_to_proto(key: ApiKeyRecord) -> auth_pb2.ApiKey:
    return auth_pb2.ApiKey(
        key_id=key.key_id,
        name=key.name,
        role=role_to_proto(key.role),
        environment_ids=sorted(key.environments),
        created_at=_timestamp(key.created_at),
        expires_at=_timestamp(key.expires_at),
        revoked_at=_timestamp(key.revoked_at),
        last_used_at=_timestamp(key.last_used_at),
        bootstrap=key.bootstrap,
    )


def user_to_proto(user: User) -> auth_pb2.User:
    return auth_pb2.User(
        username=user.username,
        role=role_to_proto(user.role),
        environment_ids=sorted(user.environments),
        created_at=_timestamp(user.created_at),
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, auth: Authenticator | None, audit: Audit) -> None:
        """``auth``: None when authentication is off (SPOTON_AUTH_ENABLED=false)."""
        self._auth = auth
        self.audit = audit

    @property
    def auth(self) -> Authenticator:
        if self._auth is None:
            raise FailedPrecondition("authentication is off on this server (SPOTON_AUTH_ENABLED=false)")
        return self._auth

    @unary
    async def Login(self, request: auth_pb2.LoginRequest, context: grpc.aio.ServicerContext) -> auth_pb2.LoginResponse:
        target = f"user/{request.username}"
        try:
            token, expires, user = await self.auth.login(request.username, request.password)
        except Exception as exc:
            who = Principal(request.username[:MAX_NAME_CHARS], Role.VIEWER, frozenset(), "", "token")
            await self.audit.record(AuditAction.AUTH_LOGIN, target, failed(exc), principal=who)
            raise
        who = Principal(user.username, user.role, user.environments, "", "token")
        await self.audit.record(AuditAction.AUTH_LOGIN, target, principal=who)
        return auth_pb2.LoginResponse(
            access_token=token,
            expires_at=_timestamp(expires),
            role=role_to_proto(user.role),
            environment_ids=sorted(user.environments),
        )

    @unary
    async def WhoAmI(self, request: auth_pb2.WhoAmIRequest, context: grpc.aio.ServicerContext) -> auth_pb2.Principal:
        return principal_to_proto(current_principal())

    @unary
    async def CreateApiKey(
        self, request: auth_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.CreateApiKeyResponse:
        expires = request.expires_at.ToDatetime(dt.UTC) if request.HasField("expires_at") else None
        record, text = await run_audited(
            self.audit,
            AuditAction.KEY_CREATE,
            self.auth.create_key(
                request.name,
                role_from_proto(request.role),
                _within_caller(_environments(request.environment_ids)),
                expires,
            ),
            "key",
            lambda created: f"key/{created[0].key_id}",
        )
        return auth_pb2.CreateApiKeyResponse(api_key=api_key_to_proto(record), secret=text)

    @unary
    async def ListApiKeys(
        self, request: auth_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ListApiKeysResponse:
        return auth_pb2.ListApiKeysResponse(api_keys=[api_key_to_proto(k) for k in await self.auth.list_keys()])

    @unary
    async def RevokeApiKey(
        self, request: auth_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RevokeApiKeyResponse:
        await run_audited(
            self.audit, AuditAction.KEY_REVOKE, self.auth.revoke_key(request.key_id), f"key/{request.key_id}"
        )
        return auth_pb2.RevokeApiKeyResponse()

    @unary
    async def CreateUser(self, request: auth_pb2.CreateUserRequest, context: grpc.aio.ServicerContext) -> auth_pb2.User:
        user = await run_audited(
            self.audit,
            AuditAction.USER_CREATE,
            self.auth.create_user(
                request.username,
                request.password,
                role_from_proto(request.role),
                _within_caller(_environments(request.environment_ids)),
            ),
            f"user/{request.username}",
        )
        return user_to_proto(user)

    @unary
    async def ListUsers(
        self, request: auth_pb2.ListUsersRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ListUsersResponse:
        return auth_pb2.ListUsersResponse(users=[user_to_proto(u) for u in await self.auth.list_users()])

    @unary
    async def DeleteUser(
        self, request: auth_pb2.DeleteUserRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.DeleteUserResponse:
        await run_audited(
            self.audit, AuditAction.USER_DELETE, self.auth.delete_user(request.username), f"user/{request.username}"
        )
        return auth_pb2.DeleteUserResponse()

    @unary
    async def ListAuditEvents(
        self, request: auth_pb2.ListAuditEventsRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ListAuditEventsResponse:
        events, next_token = await self.audit.list(
            page_size=request.page_size, page_token=request.page_token, actor=request.actor, action=request.action
        )
        return auth_pb2.ListAuditEventsResponse(
            events=[
                auth_pb2.AuditEvent(
                    event_id=e.event_id,
                    at=_timestamp(e.at),
                    actor=e.actor,
                    actor_kind=e.actor_kind,
                    credential_id=e.credential_id,
                    role=e.role,
                    action=e.action,
                    target=e.target,
                    outcome=e.outcome,
                )
                for e in events
            ],
            next_page_token=next_token,
        )
