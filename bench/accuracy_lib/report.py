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


def _map(r: SceneResult, system: str) -> str:
    return f"{r.map_error[system].median:.2f}" if r.map_error is not None else "-"


_COLUMNS: list[tuple[str, Callable[[SceneResult], str]]] = [
    ("scene", lambda r: r.name),
    ("recall", lambda r: f"{r.detection_total.recall:.2f}"),
    ("IDF1 on", lambda r: f"{r.systems['online'].camera_idf1:.3f}"),
    ("ref", lambda r: f"{r.systems['refined'].camera_idf1:.3f}"),
    ("base", lambda r: f"{r.systems['baseline'].camera_idf1:.3f}"),
    ("orac", lambda r: f"{r.systems['oracle'].camera_idf1:.3f}"),
    ("MOTA ref", lambda r: f"{r.systems['refined'].camera_mota:.3f}"),
    ("IDsw on", lambda r: f"{r.systems['online'].camera_id_switches:.0f}"),
    ("ref", lambda r: f"{r.systems['refined'].camera_id_switches:.0f}"),
    ("xIDF1 on", lambda r: f"{r.systems['online'].cross.idf1:.3f}"),
    ("ref", lambda r: f"{r.systems['refined'].cross.idf1:.3f}"),
    ("base", lambda r: f"{r.systems['baseline'].cross.idf1:.3f}"),
    ("orac", lambda r: f"{r.systems['oracle'].cross.idf1:.3f}"),
    ("pReID", lambda r: f"{r.systems['perfect_reid'].cross.idf1:.3f}"),
    ("ref/orac", lambda r: f"{r.cross_vs_oracle('refined'):.2f}"),
    ("map on", lambda r: _map(r, "online")),
    ("ref", lambda r: _map(r, "refined")),
    ("fps", lambda r: f"{r.fps:.1f}"),
    ("refine s", lambda r: f"{r.refine_s_per_window:.2f}"),
]

LEGEND = (
    "on: online (live) result; ref: refined (exports, history); base: ByteTrack (trackers) on the same "
    "detections; orac: the same detections with ground-truth ids; pReID: our refined tracking replayed with "
    "ground-truth identity features (a perfect embedder). recall: detections >= the track-start score vs "
    "ground truth (IoU >= 0.5); IDF1, MOTA, IDsw: per camera (local ids), mean over cameras; xIDF1: "
    "cross-camera IDF1 (global ids, all cameras jointly); map: median map-position error (m); fps: global "
    "frames / task wall time (refinement included); refine s: the service's refinement wall time per batch"
)


def table(results: list[SceneResult]) -> str:
    rows = [[header for header, _ in _COLUMNS]]
    suites = list(dict.fromkeys(r.suite for r in results))
    separators = []
    for suite in suites:
        separators.append(len(rows))
        rows += [[cell(r) for _, cell in _COLUMNS] for r in results if r.suite == suite]
        rows.append(_mean_row(suite, [r for r in results if r.suite == suite]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    rule = "-" * len(lines[0])
    out = [lines[0]]
    for k, line in enumerate(lines[1:], start=1):
        if k in separators:
            out.append(rule)
        out.append(line)
    return "\n".join([*out, LEGEND])


def _mean_row(suite: str, results: list[SceneResult]) -> list[str]:
    """The suite's means, in the numeric columns that average meaningfully."""
    cells = [f"{suite} mean"]
    for header, cell in _COLUMNS[1:]:
        values = []
        for r in results:
            try:
                values.append(float(cell(r)))
            except ValueError:
                continue
        cells.append(f"{statistics.fmean(values):.3f}" if values and header not in ("fps",) else "")
    return cells


def checks_text(checks: dict[str, list[Check]]) -> str:
    width = max(len(name) for name in checks)
    return "\n".join(
        f"{name:<{width}}  {'PASS' if c.passed else 'FAIL'}  {c.target:<34} {c.value:.3f} (bound {c.bound:.3f})"
        for name, scene_checks in checks.items()
        for c in scene_checks
    )


def suite_means(results: list[SceneResult]) -> dict[str, dict[str, float]]:
    """Per suite, the mean per-camera and cross-camera IDF1 of every system."""
    out: dict[str, dict[str, float]] = {}
    for suite in dict.fromkeys(r.suite for r in results):
        mine = [r for r in results if r.suite == suite]
        out[suite] = {
            **{f"{s}_camera_idf1": statistics.fmean(r.systems[s].camera_idf1 for r in mine) for s in SYSTEMS},
            **{f"{s}_cross_idf1": statistics.fmean(r.systems[s].cross.idf1 for r in mine) for s in SYSTEMS},
        }
    return out


def summary_lines(results: list[SceneResult]) -> str:
    lines = []
    for suite, m in suite_means(results).items():
        kind = "camera" if suite == "real" else "cross"
        lines.append(
            f"{suite}: mean {kind} IDF1 online {m[f'online_{kind}_idf1']:.3f}, refined {m[f'refined_{kind}_idf1']:.3f},"
            f" baseline {m[f'baseline_{kind}_idf1']:.3f} (oracle {m[f'oracle_{kind}_idf1']:.3f},"
            f" perfect Re-ID {m[f'perfect_reid_{kind}_idf1']:.3f})"
        )
    return "\n".join(lines)


def scene_json(r: SceneResult, checks: list[Check]) -> dict[str, object]:
    total = r.detection_total
    return {
        "name": r.name,
        "suite": r.suite,
        "description": r.description,
        "easy": r.easy,
        "cameras": list(r.camera_ids),
        "frames": r.frames,
        "wall_s": r.wall_s,
        "fps": r.fps,
        "refine_s_per_window": r.refine_s_per_window,
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
        "cross_idf1_over_oracle": {s: r.cross_vs_oracle(s) for s in SYSTEMS},
        "camera_idf1_over_oracle": {s: r.camera_vs_oracle(s) for s in SYSTEMS},
        "map_error_m": {k: dataclasses.asdict(v) for k, v in r.map_error.items()} if r.map_error else None,
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
