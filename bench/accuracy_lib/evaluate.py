"""Everything measured on one scene: the three systems' scores, detection quality, map
error and speed. The directory layout of a scene's run is::

    <run_dir>/ours/       the service's exports (detections included)
    <run_dir>/baseline/   ByteTrack on those detections
    <run_dir>/oracle/     those detections with ground-truth ids
    <run_dir>/perfect_reid/  our tracking core replayed on those detections with
                          ground-truth identity features: the upper bound a perfect
                          Re-ID embedder would reach (``accuracy_lib/replay.py``)
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

import numpy as np

from accuracy_lib.baseline import run_baseline
from accuracy_lib.detection import DetectionCounts, detection_counts
from accuracy_lib.map_error import map_errors
from accuracy_lib.oracle import write_oracle
from accuracy_lib.replay import ground_truth_features, load_detections, perfect_reid_configs, replay
from spoton_client.process import ProcessResult
from spoton_client.scoring import Scores, score_environment
from spoton_inference.core.environment import load_environment_dir

SYSTEMS = ("ours", "baseline", "oracle", "perfect_reid")


@dataclasses.dataclass(frozen=True, slots=True)
class SystemScores:
    """One system on one scene: local ids per camera, global ids across cameras."""

    per_camera: dict[str, Scores]
    cross: Scores

    @property
    def camera_idf1(self) -> float:
        return statistics.fmean(s.idf1 for s in self.per_camera.values())

    @property
    def camera_mota(self) -> float:
        return statistics.fmean(s.mota for s in self.per_camera.values())

    @property
    def camera_id_switches(self) -> float:
        return statistics.fmean(s.id_switches for s in self.per_camera.values())


@dataclasses.dataclass(frozen=True, slots=True)
class MapError:
    """Metres between where a matched box lands on the map and where the person is."""

    median: float
    p90: float
    boxes: int

    @classmethod
    def of(cls, errors: np.ndarray) -> MapError:
        if errors.size == 0:
            return cls(float("nan"), float("nan"), 0)
        return cls(float(np.median(errors)), float(np.percentile(errors, 90)), int(errors.size))


@dataclasses.dataclass(frozen=True, slots=True)
class SceneResult:
    name: str
    description: str
    easy: bool
    camera_ids: tuple[str, ...]
    frames: int
    wall_s: float
    detection: dict[str, DetectionCounts]
    systems: dict[str, SystemScores]
    map_error: MapError
    map_error_per_camera: dict[str, MapError]

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s

    @property
    def cross_idf1_vs_oracle(self) -> float:
        """Ours over the oracle: the share of reachable cross-camera IDF1 that association keeps."""
        oracle = self.systems["oracle"].cross.idf1
        return self.systems["ours"].cross.idf1 / oracle if oracle else float("nan")

    @property
    def perfect_reid_vs_oracle(self) -> float:
        """The same with ground-truth features: what the association loses with a perfect embedder."""
        oracle = self.systems["oracle"].cross.idf1
        return self.systems["perfect_reid"].cross.idf1 / oracle if oracle else float("nan")

    @property
    def detection_total(self) -> DetectionCounts:
        return sum(self.detection.values(), DetectionCounts(0, 0, 0))


def evaluate_scene(
    name: str,
    description: str,
    easy: bool,
    env_dir: Path,
    run_dir: Path,
    run: ProcessResult,
    fps: float,
    start_score: float,
) -> SceneResult:
    """Run the baseline, the oracle and the perfect-Re-ID replay on the service's detections; score all."""
    cams = list(run.camera_ids)
    ours, baseline, oracle, perfect = (run_dir / s for s in SYSTEMS)
    run_baseline(ours, baseline, fps)
    write_oracle(env_dir / "ground_truth", ours, oracle, cams, start_score)
    detections = load_detections(ours, cams)
    features = ground_truth_features(env_dir / "ground_truth", detections)
    replay(load_environment_dir(env_dir), detections, features, perfect, *perfect_reid_configs(start_score, fps))
    systems = {}
    for system, out in zip(SYSTEMS, (ours, baseline, oracle, perfect), strict=True):
        per_camera, cross = score_environment(env_dir / "ground_truth", out, cams)
        systems[system] = SystemScores(per_camera, cross)
    errors = map_errors(env_dir, ours, cams)
    return SceneResult(
        name=name,
        description=description,
        easy=easy,
        camera_ids=tuple(cams),
        frames=run.frames,
        wall_s=run.wall_s,
        detection=detection_counts(env_dir / "ground_truth", ours, cams, start_score),
        systems=systems,
        map_error=MapError.of(np.concatenate(list(errors.values()))),
        map_error_per_camera={cam: MapError.of(e) for cam, e in errors.items()},
    )
