"""Listing an environment's cameras, narrowed to a group and to enabled or disabled ones."""

from __future__ import annotations

from typing import Protocol

from spoton_inference.domain.environment import Camera, CameraGroup, Environment


class CameraCatalog(Protocol):
    """Where environments and their groups are looked up (services/catalog.py: Catalog)."""

    def get(self, environment_id: str) -> Environment: ...

    def group(self, environment_id: str, group_id: str) -> CameraGroup: ...


def list_cameras(
    catalog: CameraCatalog, environment_id: str, group_id: str = "", enabled: bool | None = None
) -> list[Camera]:
    """The environment's cameras in group ``group_id`` (any: empty) that are ``enabled`` (either:
    None); NotFound for an unknown environment or group."""
    env = catalog.get(environment_id)
    if group_id:
        catalog.group(environment_id, group_id)  # NOT_FOUND for an unknown group
    return [
        c for c in env.cameras if (not group_id or c.group_id == group_id) and (enabled is None or c.enabled == enabled)
    ]
