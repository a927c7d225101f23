"""The benchmark's output: the table, the target checks, ``accuracy.json`` and the summary."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path

from accuracy_lib.evaluate import SYSTEMS, SceneResult
from accuracy_lib.targets import Check
from spoton_inference.settings import REPO_ROOT

_COLUMNS: list[tuple[str, Callable[[SceneResult], str]]] = [
    ("scene", lambda r: r.name),
    ("recall", lambda r: f"{r.detection_total.recall:.3f}"),
    ("IDF1 ours", lambda r: f"{r.systems['ours'].camera_idf1:.3f}"),
    ("base", lambda r: f"{r.systems['baseline'].camera_idf1:.3f}"),
    ("orac", lambda r: f"{r.systems['oracle'].camera_idf1:.3f}"),
    ("IDsw ours", lambda r: f"{r.systems['ours'].camera_id_switches:.1f}"),
    ("base", lambda r: f"{r.systems['baseline'].camera_id_switches:.1f}"),
    ("MOTA", lambda r: f"{r.systems['ours'].camera_mota:.3f}"),
    ("xIDF1 ours", lambda r: f"{r.systems['ours'].cross.idf1:.3f}"),
    ("base", lambda r: f"{r.systems['baseline'].cross.idf1:.3f}"),
    ("orac", lambda r: f"{r.systems['oracle'].cross.idf1:.3f}"),
    ("ours/orac", lambda r: f"{r.cross_idf1_vs_oracle:.3f}"),
    ("xIDF1 pReID", lambda r: f"{r.systems['perfect_reid'].cross.idf1:.3f}"),
    ("pReID/orac", lambda r: f"{r.perfect_reid_vs_oracle:.3f}"),
    ("map m", lambda r: f"{r.map_error.median:.3f}"),
    ("fps", lambda r: f"{r.fps:.1f}"),
]

LEGEND = (
    "recall: detections >= the track-start score vs ground truth (IoU >= 0.5); "
    "IDF1, IDsw, MOTA: per camera (local ids), mean over cameras, MOTA ours; "
    "xIDF1: cross-camera IDF1 (global ids, all cameras jointly); "
    "pReID: our tracking replayed with ground-truth identity features (a perfect embedder); "
    "map m: median map-position error of our matched boxes; fps: global frames / task wall time"
)


def table(results: list[SceneResult]) -> str:
    rows = [[header for header, _ in _COLUMNS], *([cell(r) for _, cell in _COLUMNS] for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:], LEGEND])


def checks_text(checks: dict[str, list[Check]]) -> str:
    width = max(len(name) for name in checks)
    return "\n".join(
        f"{name:<{width}}  {'PASS' if c.passed else 'FAIL'}  {c.target:<34} {c.value:.3f} (bound {c.bound:.3f})"
        for name, scene_checks in checks.items()
        for c in scene_checks
    )


def mean_cross_idf1(results: list[SceneResult]) -> dict[str, float]:
    return {s: statistics.fmean(r.systems[s].cross.idf1 for r in results) for s in SYSTEMS}


def summary_line(results: list[SceneResult]) -> str:
    m = mean_cross_idf1(results)
    return (
        f"mean cross-camera IDF1: ours {m['ours']:.3f}, baseline {m['baseline']:.3f}"
        f" (oracle {m['oracle']:.3f}, ours with perfect Re-ID {m['perfect_reid']:.3f})"
    )


def scene_json(r: SceneResult, checks: list[Check]) -> dict[str, object]:
    total = r.detection_total
    return {
        "name": r.name,
        "description": r.description,
        "easy": r.easy,
        "cameras": list(r.camera_ids),
        "frames": r.frames,
        "wall_s": r.wall_s,
        "fps": r.fps,
        "detection": {
            "recall": total.recall,
            "precision": total.precision,
            **dataclasses.asdict(total),
            "per_camera": {
                cam: {"recall": c.recall, "precision": c.precision, **dataclasses.asdict(c)}
                for cam, c in r.detection.items()
            },
        },
        "systems": {
            name: {
                "camera_idf1": s.camera_idf1,
                "camera_mota": s.camera_mota,
                "camera_id_switches": s.camera_id_switches,
                "cross": dataclasses.asdict(s.cross),
                "per_camera": {cam: dataclasses.asdict(c) for cam, c in s.per_camera.items()},
            }
            for name, s in r.systems.items()
        },
        "cross_idf1_ours_over_oracle": r.cross_idf1_vs_oracle,
        "cross_idf1_perfect_reid_over_oracle": r.perfect_reid_vs_oracle,
        "map_error_m": {
            **dataclasses.asdict(r.map_error),
            "per_camera": {cam: dataclasses.asdict(e) for cam, e in r.map_error_per_camera.items()},
        },
        "checks": [dataclasses.asdict(c) for c in checks],
    }


def machine_info() -> dict[str, object]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "git_commit": _git("rev-parse", "HEAD"),
        # Uncommitted changes mean the numbers are not exactly those of the commit.
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def write_json(path: Path, doc: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(doc), indent=1) + "\n")


def _json_safe(value: object) -> object:
    """NaN (e.g. recall of a camera with no ground truth) is not JSON; it becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()
