"""The corridor layout: cameras whose views never overlap, so hand-overs cross unseen gaps."""

from __future__ import annotations

import numpy as np
import pytest

from spoton_inference.scenes.camera import PinholeCamera
from spoton_inference.scenes.config import SceneConfig
from spoton_inference.scenes.environment import homography_pairs
from spoton_inference.scenes.generate import build_cameras
from spoton_inference.scenes.suite import suite

CORRIDOR = dict(suite())["s3-corridor-handover"]


@pytest.fixture(scope="module")
def cameras() -> list[PinholeCamera]:
    return list(build_cameras(CORRIDOR).values())


def _in_view(camera: PinholeCamera, points: np.ndarray) -> np.ndarray:
    uv, depth = camera.project(points)
    return (depth > 0) & np.all((uv >= 0) & (uv < (camera.width, camera.height)), axis=-1)


def _floor_grid(config: SceneConfig, low: float = 0.0, step: float = 0.1) -> np.ndarray:
    """Floor points ``(N, 3)`` at least ``low`` metres from the walls."""
    width, depth = config.world_size
    xs, ys = np.meshgrid(np.arange(low, width - low + 1e-9, step), np.arange(low, depth - low + 1e-9, step))
    return np.column_stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)])


def test_corridor_footprints_do_not_overlap(cameras: list[PinholeCamera]):
    seen = np.array([_in_view(camera, _floor_grid(CORRIDOR)) for camera in cameras])
    assert seen.any(axis=1).all(), "every camera sees some floor"
    assert seen.sum(axis=0).max() == 1


def test_nobody_on_the_walkway_is_in_two_views_but_each_view_shows_people_whole(cameras: list[PinholeCamera]):
    """A walker (a 1.92 m tall, 0.6 m wide cylinder) anywhere on the walkway."""
    feet = _floor_grid(CORRIDOR, low=CORRIDOR.waypoint_margin_m, step=0.25)
    around = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ring = np.column_stack([0.3 * np.cos(around), 0.3 * np.sin(around)])
    body = np.array([[x, y, -z] for x, y in ring for z in (0.0, 0.96, 1.92)])
    points = feet[:, None, :] + body[None]
    in_view = np.array([_in_view(camera, points) for camera in cameras])  # camera, walker, point
    assert in_view.any(axis=2).sum(axis=0).max() == 1
    whole = in_view.all(axis=2)
    assert whole.any(axis=1).all(), "every camera shows walkers whole somewhere"
    assert 0.2 < whole.any(axis=0).mean() < 0.6, "views with unseen gaps between them"


def test_corridor_cameras_are_calibrated(cameras: list[PinholeCamera]):
    for camera in cameras:
        assert len(homography_pairs(camera, CORRIDOR.world_size)["image_points"]) >= 4
