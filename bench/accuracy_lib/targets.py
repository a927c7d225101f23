"""The accuracy targets, checked per scene.

- association: cross-camera IDF1 >= 0.85 x the oracle's (association loses < 15 %);
- tracking: mean per-camera IDF1 >= the ByteTrack baseline's + 0.10;
- easy scenes: cross-camera IDF1 >= 0.85 outright;
- map: median map-position error <= 0.3 m.
"""

from __future__ import annotations

import dataclasses

from accuracy_lib.evaluate import SceneResult

CROSS_VS_ORACLE = 0.85
CAMERA_IDF1_MARGIN = 0.10
EASY_CROSS_IDF1 = 0.85
MAX_MAP_ERROR_M = 0.3


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    target: str
    passed: bool
    value: float
    bound: float


def check_scene(scene: SceneResult) -> list[Check]:
    """The checks that apply to ``scene`` (the easy-scene one only to easy scenes)."""
    ours, baseline, oracle = (scene.systems[s] for s in ("ours", "baseline", "oracle"))
    pairs = [
        (f"cross IDF1 >= {CROSS_VS_ORACLE:g} x oracle", ours.cross.idf1, CROSS_VS_ORACLE * oracle.cross.idf1),
        (
            f"camera IDF1 >= baseline + {CAMERA_IDF1_MARGIN:g}",
            ours.camera_idf1,
            baseline.camera_idf1 + CAMERA_IDF1_MARGIN,
        ),
    ]
    if scene.easy:
        pairs.append((f"easy: cross IDF1 >= {EASY_CROSS_IDF1:g}", ours.cross.idf1, EASY_CROSS_IDF1))
    checks = [Check(target, value >= bound, value, bound) for target, value, bound in pairs]
    # An upper bound; NaN (no matched box at all) fails it.
    error = scene.map_error.median
    checks.append(Check(f"map error median <= {MAX_MAP_ERROR_M:g} m", error <= MAX_MAP_ERROR_M, error, MAX_MAP_ERROR_M))
    return checks
