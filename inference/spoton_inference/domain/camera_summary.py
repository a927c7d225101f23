"""Camera counts over the catalogue: per environment and group, by enabled flag, source kind
and latest health status."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from spoton_inference.domain.camera_source import SourceKind
from spoton_inference.domain.environment import Camera, Environment

# A camera's health status (services/camera_health.py); unknown before its first check.
ONLINE, OFFLINE, DEGRADED, UNKNOWN = "online", "offline", "degraded", "unknown"
STATUSES = (ONLINE, OFFLINE, DEGRADED, UNKNOWN)


@dataclasses.dataclass(slots=True)
class CameraCounts:
    total: int = 0
    enabled: int = 0
    by_source: dict[SourceKind, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(SourceKind, 0))
    by_status: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    @property
    def disabled(self) -> int:
        return self.total - self.enabled

    def add(self, camera: Camera, status: str) -> None:
        self.total += 1
        self.enabled += camera.enabled
        self.by_source[camera.source.kind] += 1
        self.by_status[status if status in self.by_status else UNKNOWN] += 1


@dataclasses.dataclass(frozen=True, slots=True)
class GroupCounts:
    # "" for the cameras in no group.
    group_id: str
    name: str
    counts: CameraCounts


@dataclasses.dataclass(frozen=True, slots=True)
class EnvironmentCounts:
    environment_id: str
    name: str
    counts: CameraCounts
    groups: tuple[GroupCounts, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class CameraSummary:
    counts: CameraCounts
    environments: tuple[EnvironmentCounts, ...]


def summarize(environments: Iterable[Environment], statuses: Mapping[tuple[str, str], str]) -> CameraSummary:
    """Counts for ``environments``; ``statuses`` maps (environment_id, camera_id) to the latest
    health status, and a camera missing from it counts as unknown."""
    total = CameraCounts()
    out = []
    for env in environments:
        counts = CameraCounts()
        groups = {g.group_id: GroupCounts(g.group_id, g.name, CameraCounts()) for g in env.groups}
        for camera in env.cameras:
            status = statuses.get((env.environment_id, camera.camera_id), UNKNOWN)
            for c in (total, counts, _group(groups, camera.group_id).counts):
                c.add(camera, status)
        out.append(EnvironmentCounts(env.environment_id, env.name, counts, tuple(groups.values())))
    return CameraSummary(total, tuple(out))


def _group(groups: dict[str, GroupCounts], group_id: str | None) -> GroupCounts:
    key = group_id or ""
    if key not in groups:
        groups[key] = GroupCounts(key, "", CameraCounts())
    return groups[key]
