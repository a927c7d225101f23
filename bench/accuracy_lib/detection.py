"""Detection quality, independent of tracking: recall and precision of the detections the
service could start tracks from (score >= its track-start threshold) against ground truth."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from accuracy_lib.matching import match_boxes
from accuracy_lib.motfile import FrameDetections, read_detections
from spoton_client.scoring import read_mot


@dataclasses.dataclass(frozen=True, slots=True)
class DetectionCounts:
    gt: int
    detections: int
    matched: int

    def __add__(self, other: DetectionCounts) -> DetectionCounts:
        return DetectionCounts(self.gt + other.gt, self.detections + other.detections, self.matched + other.matched)

    @property
    def recall(self) -> float:
        return self.matched / self.gt if self.gt else float("nan")

    @property
    def precision(self) -> float:
        return self.matched / self.detections if self.detections else float("nan")


def count_camera(
    gt: dict[int, tuple[np.ndarray, np.ndarray]], detections: dict[int, FrameDetections], min_score: float
) -> DetectionCounts:
    total = DetectionCounts(0, 0, 0)
    empty_gt = (np.zeros(0, int), np.zeros((0, 4)))
    for frame in sorted(set(gt) | set(detections)):
        _, gt_boxes = gt.get(frame, empty_gt)
        dets = detections.get(frame, FrameDetections.empty())
        boxes = dets.boxes[dets.scores >= min_score]
        total += DetectionCounts(len(gt_boxes), len(boxes), len(match_boxes(gt_boxes, boxes)))
    return total


def detection_counts(
    gt_dir: Path, det_dir: Path, camera_ids: list[str], min_score: float
) -> dict[str, DetectionCounts]:
    return {
        cam: count_camera(
            read_mot(gt_dir / f"{cam}.txt"), read_detections(det_dir / f"{cam}.detections.txt"), min_score
        )
        for cam in camera_ids
    }
