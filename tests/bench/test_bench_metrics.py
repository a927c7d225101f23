"""Map-position error and detection counts on tiny synthetic cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from accuracy_lib.detection import count_camera
from accuracy_lib.map_error import camera_errors, read_map_positions
from accuracy_lib.motfile import FrameDetections

from spoton_inference.domain.geometry import Homography

# 100 image pixels = 1 m on the map, no perspective.
SCALE = Homography.from_matrix([[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]])


def test_map_error_projects_the_foot_point_of_matched_boxes_only(tmp_path: Path):
    (tmp_path / "map_positions.csv").write_text("frame,person_id,map_x,map_y\n1,7,1.0,2.0\n1,8,5.0,5.0\n2,7,1.3,2.0\n")
    positions = read_map_positions(tmp_path / "map_positions.csv")
    gt = {
        1: (np.array([7, 8]), np.array([[80, 100, 40, 100], [480, 400, 40, 100]], float)),
        2: (np.array([7]), np.array([[110, 100, 40, 100]], float)),
    }
    hyp = {
        # foot (100, 200) -> (1.0, 2.0): exact; the second box overlaps nobody and is ignored
        1: (np.array([1, 2]), np.array([[80, 100, 40, 100], [900, 900, 40, 100]], float)),
        # foot (130, 210) -> (1.3, 2.1): 0.1 m off
        2: (np.array([1]), np.array([[110, 110, 40, 100]], float)),
    }
    errors = camera_errors(gt, hyp, SCALE, positions)
    np.testing.assert_allclose(sorted(errors), [0.0, 0.1], atol=1e-9)


def test_map_error_of_nothing_matched_is_empty():
    gt = {1: (np.array([7]), np.array([[0, 0, 40, 100]], float))}
    assert camera_errors(gt, {}, SCALE, {}).size == 0


def test_detection_counts_use_confident_detections_only():
    gt = {1: (np.array([1, 2]), np.array([[0, 0, 40, 100], [100, 0, 40, 100]], float))}
    dets = {
        1: FrameDetections(
            np.array([[0, 0, 40, 100], [100, 0, 40, 100], [300, 0, 40, 100]], float), np.array([0.9, 0.3, 0.6])
        ),
        2: FrameDetections(np.array([[0, 0, 40, 100]], float), np.array([0.5])),
    }
    counts = count_camera(gt, dets, 0.45)
    assert (counts.gt, counts.detections, counts.matched) == (2, 3, 1)
    assert counts.recall == pytest.approx(0.5)
    assert counts.precision == pytest.approx(1 / 3)
