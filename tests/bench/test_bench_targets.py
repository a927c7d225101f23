"""The target checks and the report's summary line."""

from __future__ import annotations

import json
import math
from pathlib import Path

from accuracy_lib.detection import DetectionCounts
from accuracy_lib.evaluate import MapError, SceneResult, SystemScores
from accuracy_lib.report import summary_line, table, write_json
from accuracy_lib.targets import check_scene

from spoton_client.scoring import Scores


def _system(camera_idf1: float, cross_idf1: float) -> SystemScores:
    return SystemScores({"c01": Scores(camera_idf1, 0.5, 3, 10)}, Scores(cross_idf1, 0.5, 4, 10))


def _scene(
    ours: tuple[float, float],
    baseline: tuple[float, float],
    oracle: tuple[float, float],
    perfect_reid: tuple[float, float] = (0.9, 0.9),
    **kw,
) -> SceneResult:
    fields = {
        "name": "s",
        "description": "a scene",
        "easy": False,
        "camera_ids": ("c01",),
        "frames": 100,
        "wall_s": 10.0,
        "detection": {"c01": DetectionCounts(10, 9, 8)},
        "systems": {
            "ours": _system(*ours),
            "baseline": _system(*baseline),
            "oracle": _system(*oracle),
            "perfect_reid": _system(*perfect_reid),
        },
        "map_error": MapError(0.2, 0.4, 50),
        "map_error_per_camera": {"c01": MapError(0.2, 0.4, 50)},
    }
    return SceneResult(**{**fields, **kw})


def _verdicts(scene: SceneResult) -> dict[str, bool]:
    return {c.target: c.passed for c in check_scene(scene)}


def test_all_pass():
    verdicts = _verdicts(_scene(ours=(0.80, 0.86), baseline=(0.65, 0.40), oracle=(0.95, 0.95), easy=True))
    assert verdicts == {
        "cross IDF1 >= 0.85 x oracle": True,
        "camera IDF1 >= baseline + 0.1": True,
        "easy: cross IDF1 >= 0.85": True,
        "map error median <= 0.3 m": True,
    }


def test_each_target_fails_on_its_own():
    verdicts = _verdicts(
        _scene(ours=(0.74, 0.80), baseline=(0.65, 0.40), oracle=(0.95, 0.95), map_error=MapError(0.31, 0.5, 9))
    )
    # Not easy: no absolute cross-IDF1 target. 0.80 < 0.85 x 0.95; 0.74 < 0.65 + 0.10.
    assert verdicts == {
        "cross IDF1 >= 0.85 x oracle": False,
        "camera IDF1 >= baseline + 0.1": False,
        "map error median <= 0.3 m": False,
    }


def test_no_matched_box_fails_the_map_target():
    scene = _scene(ours=(0.8, 0.9), baseline=(0.6, 0.4), oracle=(0.9, 0.9), map_error=MapError(math.nan, math.nan, 0))
    assert _verdicts(scene)["map error median <= 0.3 m"] is False


def test_summary_is_the_mean_over_scenes_and_nan_becomes_null(tmp_path: Path):
    scenes = [
        _scene(ours=(0.8, 0.9), baseline=(0.6, 0.4), oracle=(0.95, 1.0)),
        _scene(ours=(0.8, 0.7), baseline=(0.6, 0.2), oracle=(0.95, 0.9), perfect_reid=(0.9, 0.8), name="t"),
    ]
    assert summary_line(scenes) == (
        "mean cross-camera IDF1: ours 0.800, baseline 0.300 (oracle 0.950, ours with perfect Re-ID 0.850)"
    )
    assert [line.split()[0] for line in table(scenes).splitlines()[2:4]] == ["s", "t"]
    write_json(tmp_path / "results" / "a.json", {"x": math.nan, "y": [1.0, math.nan]})
    assert json.loads((tmp_path / "results" / "a.json").read_text()) == {"x": None, "y": [1.0, None]}
