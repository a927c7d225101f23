"""Per-environment scoping: a principal limited to some environments sees nothing of the others.

Applied in the services (the catalogue, tasks, jobs), never per RPC, so every path to an
entity is scoped. An existing entity of an environment out of scope answers NotFound, with
the message a missing one gets, so a scoped caller cannot tell the two apart; creating in an
environment out of scope answers PermissionDenied (nothing exists to hide). Everything the
service does on its own behalf runs as SYSTEM, which sees every environment.
"""

from __future__ import annotations

from spoton_inference.domain.errors import NotFound, PermissionDenied
from spoton_inference.domain.principal import current_principal


def visible(environment_id: str) -> bool:
    """Whether the current caller may see ``environment_id``."""
    return current_principal().sees(environment_id)


def scope() -> frozenset[str] | None:
    """The environments the current caller is limited to; None for all of them."""
    return current_principal().environments or None


def require_visible(environment_id: str, not_found: str) -> None:
    """NotFound(``not_found``) unless the current caller may see ``environment_id``; pass the
    message the missing entity would get."""
    if not visible(environment_id):
        raise NotFound(not_found)


def require_creatable(environment_id: str, what: str) -> None:
    """PermissionDenied unless the current caller may create ``what`` in ``environment_id``."""
    if not visible(environment_id):
        raise PermissionDenied(
            f"this credential is limited to environments {sorted(current_principal().environments)}; "
            f"it cannot create {what} in environment {environment_id!r}"
        )
