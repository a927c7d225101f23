"""Map-position error: how far from a person's true floor position the service puts them.

For each of the service's boxes matched to a ground-truth box (IoU >= 0.5, per frame), the
box's foot point (bottom centre) goes through the camera's image-to-map homography and is
compared with the ground-truth map position of the matched person in that frame. This is
the error of the box *and* the calibration, which is what the floor plan shows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from accuracy_lib.matching import match_boxes
from accuracy_lib.motfile import xywh_to_xyxy
from spoton_client.scoring import read_mot
from spoton_inference.core.environment import load_environment_dir
from spoton_inference.core.geometry import Homography, foot_points

MapPositions = dict[tuple[int, int], tuple[float, float]]


def read_map_positions(path: Path) -> MapPositions:
    """(frame, person id) -> (map_x, map_y) from ``ground_truth/map_positions.csv``."""
    with path.open(newline="") as f:
        return {
            (int(r["frame"]), int(r["person_id"])): (float(r["map_x"]), float(r["map_y"])) for r in csv.DictReader(f)
        }


def camera_errors(
    gt: dict[int, tuple[np.ndarray, np.ndarray]],
    hyp: dict[int, tuple[np.ndarray, np.ndarray]],
    homography: Homography,
    positions: MapPositions,
) -> np.ndarray:
    """Metres between projected foot points of matched boxes and the true positions."""
    projected: list[np.ndarray] = []
    truth: list[tuple[float, float]] = []
    for frame in sorted(set(gt) & set(hyp)):
        gt_ids, gt_boxes = gt[frame]
        _, hyp_boxes = hyp[frame]
        pairs = match_boxes(gt_boxes, hyp_boxes)
        if not pairs:
            continue
        feet = foot_points(xywh_to_xyxy(hyp_boxes[[h for _, h in pairs]]))
        projected.append(homography.project_points(feet))
        truth += [positions[(frame, int(gt_ids[g]))] for g, _ in pairs]
    if not projected:
        return np.zeros(0)
    return np.linalg.norm(np.concatenate(projected) - np.array(truth), axis=1)


def map_errors(env_dir: Path, hyp_dir: Path, camera_ids: list[str]) -> dict[str, np.ndarray]:
    """Per camera, the error of every matched box of ``<cam>.local.txt`` in ``hyp_dir``."""
    env = load_environment_dir(env_dir)
    positions = read_map_positions(env_dir / "ground_truth" / "map_positions.csv")
    errors: dict[str, np.ndarray] = {}
    for cam in camera_ids:
        camera = env.camera(cam)
        if camera is None or camera.homography is None:
            raise ValueError(f"{env_dir}: camera {cam!r} has no homography")
        gt = read_mot(env_dir / "ground_truth" / f"{cam}.txt")
        errors[cam] = camera_errors(gt, read_mot(hyp_dir / f"{cam}.local.txt"), camera.homography, positions)
    return errors
