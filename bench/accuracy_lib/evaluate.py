"""Everything measured on one scene: every system's scores, detection quality, map error and
speed. The directory layout of a scene's run is::

    <run_dir>/ours/          the service's exports: refined (<cam>.local.txt, <cam>.global.txt),
                             online (<cam>.online.*.txt) and the detections
    <run_dir>/baseline/      ByteTrack on those detections
    <run_dir>/oracle/        those detections with ground-truth ids
    <run_dir>/perfect_reid/  our tracking replayed on those detections with ground-truth
                             identity features, online and refined: the upper bound a
                             perfect Re-ID embedder would reach (``accuracy_lib/replay.py``)
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

from accuracy_lib.baseline import run_baseline
from accuracy_lib.detection import DetectionCounts, detection_counts
from accuracy_lib.map_error import map_errors
from accuracy_lib.oracle import write_oracle
from accuracy_lib.replay import ground_truth_features, load_detections, perfect_reid_setup, replay
from accuracy_lib.scenes import BenchScene
from spoton_client.process import ProcessResult
from spoton_client.scoring import MapError, Scores, score_environment
from spoton_inference.files.environment_dir import load_environment_dir
from spoton_inference.pipeline.runner import TRACKING_EXPORT

# System -> (directory under the run, file infix): ours online and refined share the service's exports.
SYSTEM_FILES = {
    "online": ("ours", "online."),
    "refined": ("ours", ""),
    "baseline": ("baseline", ""),
    "oracle": ("oracle", ""),
    "perfect_reid": ("perfect_reid", ""),
}
SYSTEMS = tuple(SYSTEM_FILES)


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
class SceneResult:
    name: str
    suite: str
    description: str
    easy: bool
    camera_ids: tuple[str, ...]
    frames: int
    wall_s: float
    detection: dict[str, DetectionCounts]
    systems: dict[str, SystemScores]
    # Median map error of the online and the refined boxes; None without true positions.
    map_error: dict[str, MapError] | None
    # The service's refinement: mean wall seconds per window (a batch here), from its tracking.json.
    refine_s_per_window: float

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s

    def cross_vs_oracle(self, system: str) -> float:
        """A system's cross-camera IDF1 over the oracle's."""
        oracle = self.systems["oracle"].cross.idf1
        return self.systems[system].cross.idf1 / oracle if oracle else float("nan")

    def camera_vs_oracle(self, system: str) -> float:
        """A system's mean per-camera IDF1 over the oracle's."""
        oracle = self.systems["oracle"].camera_idf1
        return self.systems[system].camera_idf1 / oracle if oracle else float("nan")

    @property
    def detection_total(self) -> DetectionCounts:
        return sum(self.detection.values(), DetectionCounts(0, 0, 0))


def evaluate_scene(scene: BenchScene, run_dir: Path, run: ProcessResult, start_score: float) -> SceneResult:
    """Run the baseline, the oracle and the perfect-Re-ID replay on the service's detections; score all."""
    cams = list(run.camera_ids)
    ours = run_dir / "ours"
    run_baseline(ours, run_dir / "baseline", scene.fps)
    write_oracle(scene.gt_dir, ours, run_dir / "oracle", cams, start_score)
    env = load_environment_dir(scene.env_dir)
    detections = load_detections(ours, cams)
    features = ground_truth_features(scene.gt_dir, detections)
    replay(env, detections, features, run_dir / "perfect_reid", perfect_reid_setup(start_score, scene.fps))
    windows = json.loads((ours / TRACKING_EXPORT).read_text())["refinement"]
    systems = {}
    for system, (folder, infix) in SYSTEM_FILES.items():
        per_camera, cross = score_environment(scene.gt_dir, run_dir / folder, cams, infix)
        systems[system] = SystemScores(per_camera, cross)
    map_error = None
    if scene.map_positions is not None:
        map_error = {
            system: MapError.of(
                list(map_errors(scene.env_dir, scene.gt_dir, scene.map_positions, ours, cams, infix).values())
            )
            for system, infix in (("online", "online."), ("refined", ""))
        }
    return SceneResult(
        name=scene.name,
        suite=scene.suite,
        description=scene.description,
        easy=scene.easy,
        camera_ids=tuple(cams),
        frames=run.frames,
        wall_s=run.wall_s,
        detection=detection_counts(scene.gt_dir, ours, cams, start_score),
        systems=systems,
        map_error=map_error,
        refine_s_per_window=statistics.fmean(w["seconds"] for w in windows) if windows else 0.0,
    )
