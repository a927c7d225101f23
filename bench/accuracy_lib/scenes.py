"""The scenes the accuracy benchmark scores: real footage and the generated suites, alike.

A :class:`BenchScene` is an environment directory with ground truth beside it:

- **real** (``../shared/real/<name>/``, or ``SPOTON_REAL_DIR``): ``gt/<cam>.txt`` in
  MOTChallenge rows and, where known, ``gt/map.csv`` (``frame,id,x,y``, metres);
- **generated** (``var/bench/scenes/<name>/``, from ``spoton_inference.scenes.suite``):
  ``ground_truth/<cam>.txt`` and ``ground_truth/map_positions.csv``
  (``frame,person_id,map_x,map_y``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from spoton_inference.scenes.suite import SUITES, describe, is_easy
from spoton_inference.settings import REPO_ROOT

REAL_SUITE = "real"
#: Where the shared real footage lies: beside the repository, as CI has it.
DEFAULT_REAL_DIR = REPO_ROOT.parent / "shared" / "real"
BENCH_VAR = REPO_ROOT / "var" / "bench"


@dataclasses.dataclass(frozen=True, slots=True)
class BenchScene:
    name: str
    suite: str
    env_dir: Path
    gt_dir: Path  # <cam>.txt per camera
    map_positions: Path | None  # true ground positions, when known
    fps: float
    description: str
    easy: bool = False

    @property
    def is_real(self) -> bool:
        return self.suite == REAL_SUITE


def real_dir() -> Path:
    return Path(os.environ.get("SPOTON_REAL_DIR", DEFAULT_REAL_DIR))


def real_scenes(root: Path | None = None) -> list[BenchScene]:
    """Every environment directory under ``root`` that has ground truth (``gt/``), by name."""
    root = real_dir() if root is None else root
    scenes = []
    for env_dir in sorted(p for p in root.glob("*") if (p / "environment.json").is_file() and (p / "gt").is_dir()):
        doc = json.loads((env_dir / "environment.json").read_text())
        cameras = doc.get("cameras", [])
        map_csv = env_dir / "gt" / "map.csv"
        scenes.append(
            BenchScene(
                name=env_dir.name,
                suite=REAL_SUITE,
                env_dir=env_dir,
                gt_dir=env_dir / "gt",
                map_positions=map_csv if map_csv.is_file() else None,
                fps=float(cameras[0]["fps"]) if cameras else 0.0,
                description=f"real: {doc.get('name', env_dir.name)}",
            )
        )
    return scenes


def generated_scenes(suite: str) -> list[BenchScene]:
    """The generated suite ``suite`` (``fixed`` or ``validation``) as bench scenes (not generated here)."""
    out = []
    for name, config in SUITES[suite]():
        env_dir = BENCH_VAR / "scenes" / name
        out.append(
            BenchScene(
                name=name,
                suite=suite,
                env_dir=env_dir,
                gt_dir=env_dir / "ground_truth",
                map_positions=env_dir / "ground_truth" / "map_positions.csv",
                fps=config.fps,
                description=describe(config),
                easy=is_easy(name),
            )
        )
    return out
