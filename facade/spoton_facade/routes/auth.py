"""``/api/v1/auth``: the browser session (login, logout, me) and, for admins, API keys, users
and the audit log, over ``spoton.v1.AuthService``.

Login exchanges a password for the service's short-lived access token and keeps it in the
``spoton_session`` cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's
request carries it), Secure over https, living as long as the token. The facade never sees
the token again except as the cookie a request brings.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from spoton.v1 import auth_pb2
from spoton_facade.clients.auth import AuthClient
from spoton_facade.clients.inference import request_metadata
from spoton_facade.contract import NO_NUL
from spoton_facade.convert import enum_number, timestamp_to_json
from spoton_facade.problems import LOOKUP_PROBLEMS, UPSTREAM_PROBLEMS, problem_responses
from spoton_facade.schemas.auth import (
    ApiKey,
    ApiKeyBody,
    ApiKeyList,
    AuditEventPage,
    CreatedApiKey,
    LoginBody,
    PrincipalBody,
    Session,
    User,
    UserBody,
    UserList,
)
from spoton_facade.schemas.base import from_proto
from spoton_facade.security import SESSION_COOKIE

# Routes a caller with no credential may use (the OpenAPI document says so: ``security: []``).
OPEN_OPERATIONS = frozenset({"auth-login", "auth-logout"})
# The largest audit page, as the service caps it.
MAX_AUDIT_PAGE = 500
WRITE_PROBLEMS = {**problem_responses(409, 415), **UPSTREAM_PROBLEMS}


def _provide_auth(state: State, request: Request[Any, Any, Any]) -> AuthClient:
    return AuthClient(state.inference_channel, request_metadata(request))


def _role(name: str) -> int:
    return enum_number(auth_pb2.Role.DESCRIPTOR, name)


class AuthController(Controller):
    """The session, API keys and users."""

    path = "/auth"
    tags = ("auth",)
    dependencies = {"auth": Provide(_provide_auth, sync_to_thread=False)}  # noqa: RUF012

    @post(
        "/login",
        name="auth-login",
        summary="Log in",
        description="Exchanges a user's name and password for a session: the `spoton_session` cookie "
        "(HttpOnly, SameSite=Strict), which the dashboard, `EventSource` and `<video>` then send. "
        "Scripts should use an API key instead.",
        status_code=200,
        responses={**problem_responses(415), **UPSTREAM_PROBLEMS},
    )
    async def login(
        self, data: JSONBody[LoginBody], auth: NamedDependency[AuthClient], request: Request[Any, Any, Any]
    ) -> Response[Session]:
        """AuthService.Login; the token goes into the cookie, never into the body."""
        reply = await auth.login(data.username, data.password)
        expires_at = timestamp_to_json(reply, "expires_at")
        max_age = None if expires_at is None else max(1, int((expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
        cookie = Cookie(
            key=SESSION_COOKIE,
            value=reply.access_token,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=max_age,
        )
        session = Session(
            subject=data.username,
            role=auth_pb2.Role.Name(reply.role).removeprefix("ROLE_").lower(),
            environment_ids=list(reply.environment_ids),
            expires_at=expires_at,
        )
        return Response(session, cookies=[cookie])

    @post(
        "/logout",
        name="auth-logout",
        summary="Log out",
        status_code=204,
        responses={
            204: ResponseSpec(None, description="The session cookie is cleared"),
            **problem_responses(403),
        },
    )
    async def logout(self, request: Request[Any, Any, Any]) -> Response[None]:
        """Clears the session cookie (the token itself expires on its own, within minutes)."""
        cookie = Cookie(
            key=SESSION_COOKIE,
            value="",
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=0,
        )
        return Response(None, status_code=204, cookies=[cookie])

    @get("/me", summary="Who am I", responses=UPSTREAM_PROBLEMS)
    async def me(self, auth: NamedDependency[AuthClient]) -> PrincipalBody:
        """AuthService.WhoAmI: the caller's identity, role and environments."""
        return from_proto(await auth.who_am_i(), PrincipalBody)

    @post(
        "/api-keys",
        summary="Create an API key (admin)",
        description="The answer holds the key's secret: the only time it is shown. Only a hash is stored.",
        status_code=201,
        responses=WRITE_PROBLEMS,
    )
    async def create_api_key(self, data: JSONBody[ApiKeyBody], auth: NamedDependency[AuthClient]) -> CreatedApiKey:
        """AuthService.CreateApiKey."""
        request = auth_pb2.CreateApiKeyRequest(
            name=data.name, role=_role(data.role), environment_ids=data.environment_ids
        )
        if data.expires_at is not None:
            request.expires_at.FromDatetime(data.expires_at.astimezone(dt.UTC))
        reply = await auth.create_api_key(request)
        return CreatedApiKey(api_key=from_proto(reply.api_key, ApiKey), secret=reply.secret)

    @get("/api-keys", summary="List API keys (admin)", responses=UPSTREAM_PROBLEMS)
    async def list_api_keys(self, auth: NamedDependency[AuthClient]) -> ApiKeyList:
        """AuthService.ListApiKeys; never a secret."""
        return from_proto(await auth.list_api_keys(), ApiKeyList)

    @delete("/api-keys/{key_id:str}", summary="Revoke an API key (admin)", responses=LOOKUP_PROBLEMS)
    async def revoke_api_key(self, key_id: FromPath[str], auth: NamedDependency[AuthClient]) -> None:
        """AuthService.RevokeApiKey: the key stops working at once."""
        await auth.revoke_api_key(key_id)

    @post("/users", summary="Create a user (admin)", status_code=201, responses=WRITE_PROBLEMS)
    async def create_user(self, data: JSONBody[UserBody], auth: NamedDependency[AuthClient]) -> User:
        """AuthService.CreateUser; the password is stored hashed and never returned."""
        user = await auth.create_user(data.username, data.password, _role(data.role), data.environment_ids)
        return from_proto(user, User)

    @get("/users", summary="List users (admin)", responses=UPSTREAM_PROBLEMS)
    async def list_users(self, auth: NamedDependency[AuthClient]) -> UserList:
        """AuthService.ListUsers."""
        return from_proto(await auth.list_users(), UserList)

    @delete("/users/{username:str}", summary="Delete a user (admin)", responses=LOOKUP_PROBLEMS)
    async def delete_user(self, username: FromPath[str], auth: NamedDependency[AuthClient]) -> None:
        """AuthService.DeleteUser."""
        await auth.delete_user(username)


class AuditController(Controller):
    """The audit log: who did what, newest first."""

    path = "/audit-events"
    tags = ("auth",)
    dependencies = {"auth": Provide(_provide_auth, sync_to_thread=False)}  # noqa: RUF012

    @get(summary="List audit events (admin)", responses=UPSTREAM_PROBLEMS)
    async def list_audit_events(
        self,
        auth: NamedDependency[AuthClient],
        page_size: Annotated[int, QueryParameter(ge=0, le=MAX_AUDIT_PAGE, description="0: the default")] = 0,
        page_token: Annotated[str, QueryParameter(pattern=NO_NUL)] = "",
        actor: Annotated[str, QueryParameter(pattern=NO_NUL, description="Only this subject's")] = "",
        action: Annotated[str, QueryParameter(pattern=NO_NUL, description="Only this action")] = "",
    ) -> AuditEventPage:
        """AuthService.ListAuditEvents."""
        return from_proto(await auth.list_audit_events(page_size, page_token, actor, action), AuditEventPage)
