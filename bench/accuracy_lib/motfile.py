"""MOTChallenge text files: ``frame,id,x,y,w,h,conf,-1,-1,-1``, boxes as x,y,w,h.

Only numpy and the standard library: ``bench/baseline_bytetrack.py`` runs this in
``.venv-baseline`` (numpy 2) as well as the benchmark does in the main venv (numpy 1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np

DETECTIONS_SUFFIX = ".detections.txt"


@dataclasses.dataclass(frozen=True, slots=True)
class FrameDetections:
    """One frame's detections: Nx4 x,y,w,h boxes and N scores."""

    boxes: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> FrameDetections:
        return cls(np.zeros((0, 4)), np.zeros(0))


@dataclasses.dataclass(frozen=True, slots=True)
class MotRow:
    """One output line: a box with an identity."""

    frame: int
    track_id: int
    box: tuple[float, float, float, float]  # x, y, w, h
    score: float


def read_detections(path: Path) -> dict[int, FrameDetections]:
    """frame -> detections of a ``<cam>.detections.txt`` (ids are -1 there and ignored)."""
    rows: dict[int, tuple[list[list[float]], list[float]]] = {}
    for line in path.read_text().splitlines():
        parts = line.split(",")
        if len(parts) < 7:
            continue
        boxes, scores = rows.setdefault(int(float(parts[0])), ([], []))
        boxes.append([float(v) for v in parts[2:6]])
        scores.append(float(parts[6]))
    return {f: FrameDetections(np.array(b).reshape(-1, 4), np.array(s)) for f, (b, s) in rows.items()}


def camera_ids_in(det_dir: Path) -> list[str]:
    """Camera ids of the ``<cam>.detections.txt`` files in ``det_dir``, sorted."""
    return sorted(p.name.removesuffix(DETECTIONS_SUFFIX) for p in det_dir.glob(f"*{DETECTIONS_SUFFIX}"))


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def format_row(row: MotRow) -> str:
    """The line the service's exports use, so every scorer reads all three systems alike."""
    x, y, w, h = row.box
    return f"{row.frame},{row.track_id},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{row.score:.4f},-1,-1,-1\n"


def write_rows(path: Path, rows: Iterable[MotRow]) -> None:
    path.write_text("".join(format_row(r) for r in sorted(rows, key=lambda r: (r.frame, r.track_id))))
