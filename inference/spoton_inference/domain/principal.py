"""Who is calling: the authenticated principal, its role, and the environments it may see.

The gRPC edge authenticates each call and sets :func:`current_principal` for the call's
task; services read it to scope what they return and to name the actor in the audit log.

    >>> admin = Principal("admin", Role.ADMIN, frozenset(), "key-1", "api_key")
    >>> admin.allows(Role.OPERATOR), admin.sees("any-environment")
    (True, True)
    >>> viewer = Principal("kiosk", Role.VIEWER, frozenset({"hall"}), "key-2", "api_key")
    >>> viewer.allows(Role.OPERATOR), viewer.sees("hall"), viewer.sees("yard")
    (False, True, False)
"""

from __future__ import annotations

import contextvars
import dataclasses
import enum
from typing import Literal


class Role(enum.IntEnum):
    """Ordered: each role may do all that the ones below it may."""

    VIEWER = 1  # read tasks, events, analytics, media and the dashboard
    OPERATOR = 2  # also start and control tasks and jobs, upload, stream frames
    ADMIN = 3  # also manage cameras, environments, credentials, keys and users


CredentialKind = Literal["api_key", "token", "system"]


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    subject: str  # an API key's name or a user's name
    role: Role
    # Empty: every environment.
    environments: frozenset[str]
    credential_id: str
    kind: CredentialKind

    def allows(self, role: Role) -> bool:
        return self.role >= role

    def sees(self, environment_id: str) -> bool:
        return not self.environments or environment_id in self.environments


# The service acting on its own behalf (start-up recovery, jobs it runs from its queue).
SYSTEM = Principal("spoton", Role.ADMIN, frozenset(), "", "system")

_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("spoton_principal", default=SYSTEM)


def current_principal() -> Principal:
    """The caller of the RPC being served (:data:`SYSTEM` outside any call)."""
    return _current.get()


def set_current_principal(principal: Principal) -> contextvars.Token[Principal]:
    return _current.set(principal)


def reset_current_principal(token: contextvars.Token[Principal]) -> None:
    _current.reset(token)
