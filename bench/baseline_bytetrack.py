"""The ByteTrack baseline: Roboflow's ``trackers`` ByteTrackTracker on the service's own
detections, one tracker per camera, no cross-camera association.

    .venv-baseline/bin/python bench/baseline_bytetrack.py DET_DIR OUT_DIR [--fps 10]

It reads every ``<cam>.detections.txt`` in DET_DIR (all raw detections the service's
tracker saw, score >= 0.1) and writes ``<cam>.local.txt`` and ``<cam>.global.txt`` to
OUT_DIR in the service's MOTChallenge format, plus ``baseline.json`` (package version and
settings). The tracker keeps its default parameters, with the scenes' frame rate, and gets
every detection with its score so that it splits high and low confidence itself.

Local ids are the tracker's ids + 1 (MOTChallenge ids are positive). Global ids are the
same offset by camera index x 100000: each camera's ids are independent, so the same person
seen by two cameras is two identities, the floor any cross-camera system must beat.

It runs in its own venv because ``trackers`` needs numpy >= 2 and the main venv is pinned
below 2; only the tracker itself is imported lazily, so the conversions are testable from
the main venv.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from accuracy_lib.motfile import (
    FrameDetections,
    MotRow,
    camera_ids_in,
    read_detections,
    write_rows,
    xywh_to_xyxy,
    xyxy_to_xywh,
)

GLOBAL_ID_STRIDE = 100_000


def frame_sequence(detections: dict[int, FrameDetections]) -> Iterator[tuple[int, FrameDetections]]:
    """Frames 1..last in order, empty ones included: the tracker must see every frame for
    its Kalman prediction and its lost-track clock to advance."""
    last = max(detections, default=0)
    for frame in range(1, last + 1):
        yield frame, detections.get(frame, FrameDetections.empty())


def tracked_rows(frame: int, xyxy: np.ndarray, scores: np.ndarray, tracker_ids: np.ndarray) -> list[MotRow]:
    """The tracker's output for one frame as MOT rows; id -1 (unconfirmed, untracked) is dropped."""
    rows = []
    for (x, y, w, h), score, tid in zip(
        xyxy_to_xywh(xyxy).tolist(), np.asarray(scores).tolist(), np.asarray(tracker_ids).tolist(), strict=True
    ):
        if tid >= 0:
            rows.append(MotRow(frame, tid + 1, (x, y, w, h), score))
    return rows


def globalise(rows: list[MotRow], camera_index: int) -> list[MotRow]:
    """The same rows with ids made unique across cameras."""
    offset = camera_index * GLOBAL_ID_STRIDE
    return [MotRow(r.frame, r.track_id + offset, r.box, r.score) for r in rows]


def track_camera(detections: dict[int, FrameDetections], fps: float) -> list[MotRow]:
    import supervision as sv
    from trackers import ByteTrackTracker

    tracker = ByteTrackTracker(frame_rate=fps)
    rows: list[MotRow] = []
    for frame, dets in frame_sequence(detections):
        result = tracker.update(sv.Detections(xyxy=xywh_to_xyxy(dets.boxes), confidence=dets.scores))
        rows += tracked_rows(frame, result.xyxy, result.confidence, result.tracker_id)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("det_dir", type=Path, metavar="DET_DIR")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate of the cameras (default: 10)")
    args = parser.parse_args(argv)
    cameras = camera_ids_in(args.det_dir)
    if not cameras:
        parser.error(f"no *.detections.txt in {args.det_dir}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for index, cam in enumerate(cameras):
        rows = track_camera(read_detections(args.det_dir / f"{cam}.detections.txt"), args.fps)
        write_rows(args.out_dir / f"{cam}.local.txt", rows)
        write_rows(args.out_dir / f"{cam}.global.txt", globalise(rows, index))
    info = {
        "package": "trackers",
        "version": importlib.metadata.version("trackers"),
        "tracker": "ByteTrackTracker",
        "parameters": {"frame_rate": args.fps, "others": "defaults"},
    }
    (args.out_dir / "baseline.json").write_text(json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    main()
