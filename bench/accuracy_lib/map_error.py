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
    """(frame, person id) -> (map_x, map_y), from the generated scenes' ``map_positions.csv``
    (``frame,person_id,map_x,map_y``) or the real footage's ``gt/map.csv`` (``frame,id,x,y``)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and "person_id" in rows[0]:
        return {(int(r["frame"]), int(r["person_id"])): (float(r["map_x"]), float(r["map_y"])) for r in rows}
    return {(int(r["frame"]), int(r["id"])): (float(r["x"]), float(r["y"])) for r in rows}


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
        # A person with no known ground position that frame cannot be scored.
        pairs = [(g, h) for g, h in match_boxes(gt_boxes, hyp_boxes) if (frame, int(gt_ids[g])) in positions]
        if not pairs:
            continue
        feet = foot_points(xywh_to_xyxy(hyp_boxes[[h for _, h in pairs]]))
        projected.append(homography.project_points(feet))
        truth += [positions[(frame, int(gt_ids[g]))] for g, _ in pairs]
    if not projected:
        return np.zeros(0)
    return np.linalg.norm(np.concatenate(projected) - np.array(truth), axis=1)


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
