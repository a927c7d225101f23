"""The catalogue's input specs: how a client's homography is turned into a validated one."""

import numpy as np
import pytest

from spoton_inference.domain.errors import InvalidArgument
from spoton_inference.domain.geometry import HomographySpec

IMAGE = ((0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0))
WORLD = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def test_points_are_fitted():
    h = HomographySpec(IMAGE, WORLD).build()
    assert np.allclose(h.project_points([[50, 50]]), [[0.5, 0.5]])
    assert h.image_points == IMAGE


def test_a_matrix_alone_or_with_points():
    matrix = (0.01, 0, 0, 0, 0.01, 0, 0, 0, 1)
    assert HomographySpec(matrix=matrix).build().image_points == ()
    assert HomographySpec(IMAGE, WORLD, matrix).build().reprojection_error() == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (HomographySpec(), "empty"),
        (HomographySpec(matrix=(1.0,) * 8), "9 values"),
        (HomographySpec(IMAGE, WORLD[:3], (1, 0, 0, 0, 1, 0, 0, 0, 1)), "got 4 and 3"),
    ],
)
def test_bad_specs_say_what_to_fix(spec, message):
    with pytest.raises(InvalidArgument, match=message):
        spec.build()
