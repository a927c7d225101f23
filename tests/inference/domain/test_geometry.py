import numpy as np
import pytest

from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.geometry import Homography, foot_points


def _true_homography() -> np.ndarray:
    return np.array([[0.02, 0.001, -3.0], [0.0005, 0.05, -2.0], [0.0001, 0.002, 1.0]])


def _project(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    h = np.hstack([pts, np.ones((len(pts), 1))]) @ m.T
    return h[:, :2] / h[:, 2:]


def test_fit_recovers_a_known_mapping_and_reports_tiny_error():
    image = np.array([[10, 300], [600, 310], [580, 100], [40, 90], [320, 200]], float)
    truth = _true_homography()
    h = Homography.fit(image, _project(truth, image))
    probe = np.array([[123.0, 222.0], [400.0, 150.0]])
    assert np.allclose(h.project_points(probe), _project(truth, probe), atol=1e-6)
    assert h.reprojection_error() < 1e-6


@pytest.mark.parametrize(
    ("image", "world", "message"),
    [
        ([[0, 0], [1, 0], [0, 1]], [[0, 0], [1, 0], [0, 1]], "at least 4"),
        ([[0, 0], [1, 1], [2, 2], [3, 3]], [[0, 0], [1, 0], [1, 1], [0, 1]], "collinear"),
        ([[0, 0], [1, 0], [1, 1], [0, 1]], [[0, 0], [1, 0]], "matching"),
    ],
)
def test_fit_rejects_degenerate_input_with_a_reason(image, world, message):
    with pytest.raises(InvalidArgument, match=message):
        Homography.fit(image, world)


def test_singular_matrix_is_rejected():
    with pytest.raises(InvalidArgument, match="singular"):
        Homography.from_matrix([[1, 0, 0], [2, 0, 0], [0, 0, 1]])


def test_foot_point_is_bottom_centre():
    assert foot_points(np.array([[10, 20, 30, 80]])).tolist() == [[20.0, 80.0]]


def test_three_of_four_points_on_a_line_are_refused():
    image = [[0, 0], [10, 0], [20, 0], [5, 9]]
    with pytest.raises(InvalidArgument, match="three of the four"):
        Homography.fit(image, _project(_true_homography(), np.array(image, float)))


def test_pairs_listed_in_different_orders_cross_the_horizon():
    square = [[0, 0], [640, 0], [640, 480], [0, 480]]
    with pytest.raises(InvalidArgument, match="horizon"):
        Homography.fit(square, [[0, 0], [1, 0], [0, 1], [1, 1]])


@pytest.mark.parametrize("points", [[[0, 0, 1]] * 4, [[0, 0], [1]], [[float("nan"), 0]] * 4])
def test_malformed_points_are_refused(points):
    with pytest.raises(InvalidArgument, match="image_points must each be"):
        Homography.fit(points, [[0, 0]] * len(points))


def test_a_given_matrix_is_measured_against_its_points():
    image = np.array([[10, 300], [600, 310], [580, 100], [40, 90]], float)
    truth = _true_homography()
    shifted = _project(truth, image) + np.array([0.3, -0.4])
    h = Homography.from_matrix(truth, image, shifted)
    assert h.reprojection_error() == pytest.approx(0.5)
    assert Homography.from_matrix(truth).reprojection_error() == 0.0
