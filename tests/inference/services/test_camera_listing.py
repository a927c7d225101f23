"""Listing cameras by group and enabled, over a fake catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from spoton_inference.domain.environment import Camera, CameraGroup, Environment, FloorMap
from spoton_inference.domain.errors import NotFound
from spoton_inference.services.camera_listing import list_cameras


def camera(camera_id: str, group_id: str | None, enabled: bool) -> Camera:
    return Camera(camera_id, camera_id, 10.0, 640, 480, None, group_id=group_id, enabled=enabled)


ENV = Environment(
    "site",
    "Site",
    FloorMap(Path("map.png"), 0.01),
    (camera("a", "door", True), camera("b", "door", False), camera("c", None, True)),
    groups=(CameraGroup("door", "Door"),),
)


class Catalog:
    def get(self, environment_id: str) -> Environment:
        if environment_id != ENV.environment_id:
            raise NotFound(f"environment {environment_id!r} not found")
        return ENV

    def group(self, environment_id: str, group_id: str) -> CameraGroup:
        found = self.get(environment_id).group(group_id)
        if found is None:
            raise NotFound(f"group {group_id!r} not found")
        return found


@pytest.mark.parametrize(
    ("group_id", "enabled", "expected"),
    [("", None, ["a", "b", "c"]), ("door", None, ["a", "b"]), ("", True, ["a", "c"]), ("door", False, ["b"])],
)
def test_cameras_narrowed_by_group_and_enabled(group_id: str, enabled: bool | None, expected: list[str]) -> None:
    assert [c.camera_id for c in list_cameras(Catalog(), "site", group_id, enabled)] == expected


def test_an_unknown_group_or_environment_is_not_found() -> None:
    with pytest.raises(NotFound, match="group"):
        list_cameras(Catalog(), "site", "window")
    with pytest.raises(NotFound, match="environment"):
        list_cameras(Catalog(), "elsewhere")
