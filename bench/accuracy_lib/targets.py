"""The accuracy targets, checked per scene (one fixed configuration for every suite).

Real footage, per camera (local ids):

- refined IDF1 >= 0.8 x the oracle's, and at least the issue's floor for the two shared
  sequences (PETS09-S2L1 0.67, TUD-Campus 0.72: 0.8 x the oracle at the detector's 0.2
  threshold that the footage's README gives);
- online IDF1 >= the ByteTrack baseline's + 0.10;
- median map error of the refined boxes <= 0.3 m, where true ground positions are known.

Generated suites, cross-camera (global ids):

- refined IDF1 >= 0.6 x the oracle's;
- with the perfect-Re-ID bound (ground-truth features), refined IDF1 >= 0.9 x the oracle's;
- online per-camera IDF1 >= the ByteTrack baseline's + 0.10;
- median map error of the refined boxes <= 0.3 m.
"""

from __future__ import annotations

import dataclasses
import math

from accuracy_lib.evaluate import SceneResult

REAL_REFINED_VS_ORACLE = 0.8
REAL_REFINED_FLOOR = {"pets09-s2l1": 0.67, "tud-campus": 0.72}
ONLINE_MARGIN_OVER_BASELINE = 0.10
SYNTHETIC_REFINED_VS_ORACLE = 0.6
PERFECT_REID_VS_ORACLE = 0.9
MAX_MAP_ERROR_M = 0.3


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    target: str
    passed: bool
    value: float
    bound: float


def check_scene(scene: SceneResult) -> list[Check]:
    """The checks that apply to ``scene`` (see the module docs)."""
    s = scene.systems
    pairs: list[tuple[str, float, float]] = []
    online_bound = s["baseline"].camera_idf1 + ONLINE_MARGIN_OVER_BASELINE
    if scene.suite == "real":
        bound = max(REAL_REFINED_VS_ORACLE * s["oracle"].camera_idf1, REAL_REFINED_FLOOR.get(scene.name, 0.0))
        pairs.append((f"refined IDF1 >= {REAL_REFINED_VS_ORACLE:g} x oracle", s["refined"].camera_idf1, bound))
    else:
        pairs += [
            (
                f"refined cross IDF1 >= {SYNTHETIC_REFINED_VS_ORACLE:g} x oracle",
                s["refined"].cross.idf1,
                SYNTHETIC_REFINED_VS_ORACLE * s["oracle"].cross.idf1,
            ),
            (
                f"perfect Re-ID cross IDF1 >= {PERFECT_REID_VS_ORACLE:g} x oracle",
                s["perfect_reid"].cross.idf1,
                PERFECT_REID_VS_ORACLE * s["oracle"].cross.idf1,
            ),
        ]
    pairs.append((f"online IDF1 >= baseline + {ONLINE_MARGIN_OVER_BASELINE:g}", s["online"].camera_idf1, online_bound))
    checks = [Check(target, value >= bound, value, bound) for target, value, bound in pairs]
    if scene.map_error is not None:
        error = scene.map_error["refined"].median
        # An upper bound; NaN (no matched box at all) fails it.
        passed = not math.isnan(error) and error <= MAX_MAP_ERROR_M
        checks.append(Check(f"map error median <= {MAX_MAP_ERROR_M:g} m", passed, error, MAX_MAP_ERROR_M))
    return checks
