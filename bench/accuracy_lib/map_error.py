"""Map-position error: how far from a person's true floor position the service puts them.

For each of the service's boxes matched to a ground-truth box (IoU >= 0.5, per frame), the
box's foot point (bottom centre) goes through the camera's image-to-map homography and is
compared with the ground-truth map position of the matched person in that frame. This is
the error of the box *and* the calibration, which is what the floor plan shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spoton_client.scoring import MapPositions, camera_map_errors, read_map_positions, read_mot
from spoton_inference.domain.geometry import Homography
from spoton_inference.files.environment_dir import load_environment_dir


def camera_errors(
    gt: dict[int, tuple[np.ndarray, np.ndarray]],
    hyp: dict[int, tuple[np.ndarray, np.ndarray]],
    homography: Homography,
    positions: MapPositions,
) -> np.ndarray:
    """Metres between projected foot points of matched boxes and the true positions."""
    return camera_map_errors(gt, hyp, homography.project_points, positions)


def map_errors(
    env_dir: Path, gt_dir: Path, positions_file: Path, hyp_dir: Path, camera_ids: list[str], infix: str = ""
) -> dict[str, np.ndarray]:
    """Per camera, the error of every matched box of ``<cam>.<infix>local.txt`` in ``hyp_dir``.

    A camera without a homography cannot be scored and is left out.
    """
    env = load_environment_dir(env_dir)
    positions = read_map_positions(positions_file)
    errors: dict[str, np.ndarray] = {}
    for cam in camera_ids:
        camera = env.camera(cam)
        if camera is None or camera.homography is None:
            continue
        gt = read_mot(gt_dir / f"{cam}.txt")
        errors[cam] = camera_errors(gt, read_mot(hyp_dir / f"{cam}.{infix}local.txt"), camera.homography, positions)
    return errors
