"""Bodies of the ``/api/v1/auth`` routes and the audit log, as ``spoton.v1.AuthService`` has them.

Secrets travel one way only: a password or an API key's secret is read in a request; the one
response that holds a secret is the key's creation (shown once, never again).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from spoton_facade.contract import NO_NUL, Name, Text

RoleName = Literal["viewer", "operator", "admin"]
# User names and passwords as the service takes them.
Username = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._@-]{1,64}$")]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=NO_NUL)]
# What the service accepts for a new user's password.
NewPassword = Annotated[str, msgspec.Meta(min_length=8, max_length=1024, pattern=NO_NUL)]
EnvironmentIds = Annotated[list[Text], msgspec.Meta(max_length=1000)]
# An RFC 3339 date-time with its offset (msgspec's schema would leave the format out).
Instant = Annotated[dt.datetime, msgspec.Meta(tz=True, extra_json_schema={"format": "date-time"})]


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/auth/login``."""

    username: Username
    password: Password


class Session(msgspec.Struct):
    """Who logged in; the access token itself is only in the HttpOnly ``spoton_session`` cookie."""

    subject: str
    role: str
    # Empty: every environment.
    environment_ids: list[str]
    expires_at: dt.datetime | None


class PrincipalBody(msgspec.Struct):
    """``GET /api/v1/auth/me``: who the request's credential says the caller is."""

    subject: str
    role: str
    environment_ids: list[str]
    # api_key or token
    kind: str
    # The API key's id, or the token's id.
    credential_id: str


class ApiKeyBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/auth/api-keys``."""

    name: Name
    role: RoleName
    # Empty: every environment.
    environment_ids: EnvironmentIds = msgspec.field(default_factory=list)
    # None: never expires.
    expires_at: Instant | None = None


class ApiKey(msgspec.Struct):
    """An API key as listed: never its secret."""

    key_id: str
    name: str
    role: str
    environment_ids: list[str]
    created_at: dt.datetime | None
    # None: never expires / not revoked / never used.
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    # The admin key made on first start or taken from SPOTON_ADMIN_API_KEY.
    bootstrap: bool


class CreatedApiKey(msgspec.Struct):
    """A new key, with its secret: the only time the secret is shown. Send it as
    ``Authorization: Bearer <secret>`` or ``X-API-Key: <secret>``."""

    api_key: ApiKey
    secret: str


class ApiKeyList(msgspec.Struct):
    api_keys: list[ApiKey]


class UserBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/auth/users``."""

    username: Username
    password: NewPassword
    role: RoleName
    environment_ids: EnvironmentIds = msgspec.field(default_factory=list)


class User(msgspec.Struct):
    """A user as listed: never the password (nor its hash)."""

    username: str
    role: str
    environment_ids: list[str]
    created_at: dt.datetime | None


class UserList(msgspec.Struct):
    users: list[User]


class AuditEvent(msgspec.Struct):
    """One audit log entry: who (``actor``) did what (``action``) to what (``target``)."""

    event_id: int
    at: dt.datetime | None
    # The principal: its name, kind (api_key, token, system), credential id and role.
    actor: str
    actor_kind: str
    credential_id: str
    role: str
    # e.g. task.start, job.cancel, camera.update, auth.login
    action: str
    # e.g. task/<id>, environment/<id>/camera/<id>
    target: str
    # ok, or failed: <error kind>
    outcome: str


class AuditEventPage(msgspec.Struct):
    events: list[AuditEvent]
    # "" on the last page.
    next_page_token: str
