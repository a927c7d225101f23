"""The pinhole camera model behind every projection and homography."""

from __future__ import annotations

import numpy as np
import pytest

from spoton_inference.scenes.camera import PinholeCamera


@pytest.fixture
def camera() -> PinholeCamera:
    return PinholeCamera.look_at((2.0, 1.0, 3.0), (6.0, 5.0), hfov_deg=55.0, width=640, height=480)


def test_look_at_target_lands_on_the_image_centre(camera: PinholeCamera):
    uv, depth = camera.project(np.array([[6.0, 5.0, 0.0]]))
    np.testing.assert_allclose(uv, [[320.0, 240.0]], atol=1e-9)
    assert depth[0] > 0


def test_rotation_is_proper_and_not_mirrored(camera: PinholeCamera):
    np.testing.assert_allclose(camera.rotation @ camera.rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(camera.rotation) == pytest.approx(1.0)
    # Higher points appear higher in the image (smaller v).
    (low, high), _ = camera.project(np.array([[6.0, 5.0, 0.0], [6.0, 5.0, -1.7]]))
    assert high[1] < low[1]


def test_image_to_ground_inverts_projection_of_floor_points(camera: PinholeCamera):
    floor = np.random.default_rng(0).uniform([3.0, 3.0], [9.0, 8.0], (50, 2))
    uv, _ = camera.project(np.column_stack([floor, np.zeros(len(floor))]))
    np.testing.assert_allclose(camera.image_to_ground(uv), floor, atol=1e-9)


def test_pixel_rays_point_through_their_pixels(camera: PinholeCamera):
    rays = camera.pixel_rays()
    assert rays.shape == (480, 640, 3)
    points = camera.centre + 4.0 * rays[[0, 100, 479], [0, 300, 639]]
    uv, _ = camera.project(points)
    np.testing.assert_allclose(uv, [[0.5, 0.5], [300.5, 100.5], [639.5, 479.5]], atol=1e-9)


def test_horizon_row_sees_level_rays(camera: PinholeCamera):
    ray = camera.rays(np.array([[320.0, camera.horizon_v()]]))
    assert abs(ray[0, 2]) < 1e-9
