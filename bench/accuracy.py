"""Accuracy benchmark: SpotOn, online and refined, against a ByteTrack baseline and a ground-truth
oracle, on real footage and on the generated suites.

    make bench-accuracy
    .venv/bin/python bench/accuracy.py [--suites real fixed validation] [--scenes NAME ...] [--out DIR]

Suites: ``real`` (every environment directory with ground truth under ``../shared/real``, or
``SPOTON_REAL_DIR``), ``fixed`` and ``validation`` (``spoton_inference.scenes.suite``, generated
once into ``var/bench/scenes/`` and again when their config changes). For each scene:

1. the real service processes it, one stack for the whole run (the one in ``var/stack.json``
   when up, else an embedded one under ``var/bench/data``); its exports (refined, online,
   raw detections) land in ``var/bench/out/<scene>/ours/``;
2. the baseline, ``trackers``' ByteTrackTracker per camera with no cross-camera
   association, runs on exactly those detections (``bench/baseline_bytetrack.py`` in
   ``.venv-baseline``) into ``.../baseline/``;
3. the oracle puts ground-truth ids on those detections (``accuracy_lib/oracle.py``);
4. our tracking is replayed on those detections with ground-truth identity features (the
   perfect-Re-ID bound) into ``.../perfect_reid/``;
5. all are scored with py-motmetrics (per-camera MOTA, IDF1, ID switches; cross-camera
   IDF1 over global ids), plus detection recall, map-position error and frames/s.

It prints one table (a block per suite, with its means), PASS/FAIL per target and scene
(``accuracy_lib/targets.py``), writes ``DIR/accuracy.json`` (default ``bench/results``) and
ends with the suites' means. The exit code is 0 whatever the scores; only a crash (a failed
task, say) is an error.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import os
import time
from pathlib import Path

from accuracy_lib.baseline import require_baseline_venv
from accuracy_lib.evaluate import evaluate_scene
from accuracy_lib.matching import IOU_MATCH
from accuracy_lib.report import checks_text, machine_info, scene_json, suite_means, summary_lines, table, write_json
from accuracy_lib.scenes import BENCH_VAR, REAL_SUITE, BenchScene, generated_scenes, real_dir, real_scenes
from accuracy_lib.service import process_scenes
from accuracy_lib.targets import check_scene

from spoton_inference.scenes.suite import SUITES, build
from spoton_inference.settings import REPO_ROOT, Settings

DEFAULT_RESULTS = REPO_ROOT / "bench" / "results"
ALL_SUITES = (REAL_SUITE, *SUITES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", choices=ALL_SUITES, default=list(ALL_SUITES), help="default: all")
    parser.add_argument("--scenes", nargs="+", metavar="NAME", help="a subset of the suites' scenes")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS, help="where accuracy.json goes")
    args = parser.parse_args(argv)
    scenes: list[BenchScene] = []
    for suite in args.suites:
        found = real_scenes() if suite == REAL_SUITE else generated_scenes(suite)
        if suite == REAL_SUITE and not found:
            parser.error(f"no real footage with ground truth under {real_dir()} (set SPOTON_REAL_DIR)")
        scenes += found
    if args.scenes:
        unknown = sorted(set(args.scenes) - {s.name for s in scenes})
        if unknown:
            parser.error(f"unknown scenes {unknown}; the suites have {[s.name for s in scenes]}")
        scenes = [s for s in scenes if s.name in args.scenes]
    require_baseline_venv()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    started, load_start = time.monotonic(), os.getloadavg()[0]
    for suite in dict.fromkeys(s.suite for s in scenes if s.suite != REAL_SUITE):
        wanted = {s.name for s in scenes if s.suite == suite}
        configs = [(name, config) for name, config in SUITES[suite]() if name in wanted]
        for name, seconds in build(BENCH_VAR / "scenes", scenes=configs).items():
            print(f"scene {name}: {'cached' if seconds is None else f'generated in {seconds:.0f} s'}", flush=True)
    run_dirs = {s.name: BENCH_VAR / "out" / s.name for s in scenes}
    # SPOTON_* variables apply (a dropped-in embedder's calibration, say); the data stays the bench's own.
    settings = Settings.from_env({**os.environ, "SPOTON_DATA_DIR": str(BENCH_VAR / "data")})
    runs = asyncio.run(
        process_scenes({s.name: s.env_dir for s in scenes}, {n: d / "ours" for n, d in run_dirs.items()}, settings)
    )
    results = [evaluate_scene(s, run_dirs[s.name], runs[s.name], settings.detection_threshold) for s in scenes]
    checks = {r.name: check_scene(r) for r in results}
    wall_s, load_end = time.monotonic() - started, os.getloadavg()[0]

    json_path = args.out / "accuracy.json"
    write_json(
        json_path,
        {
            "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "wall_s": wall_s,
            # Other work on the machine slows the service: fps is only comparable at low load.
            "machine": {**machine_info(), "load_avg_1m": {"start": load_start, "end": load_end}},
            "config": {
                "track_start_score": settings.detection_threshold,
                "iou_match": IOU_MATCH,
                "baseline": _baseline_info(run_dirs[scenes[0].name]),
                "suites": list(args.suites),
                "easy_scenes": [s.name for s in scenes if s.easy],
            },
            "scenes": [scene_json(r, checks[r.name]) for r in results],
            "suite_means": suite_means(results),
        },
    )
    print(f"\n{table(results)}\n\n{checks_text(checks)}\n")
    print(
        f"wall time {wall_s:.0f} s (1-min load average {load_start:.1f} at start, {load_end:.1f} at end); {json_path}"
    )
    print(summary_lines(results))


def _baseline_info(run_dir: Path) -> object:
    """What ``baseline_bytetrack.py`` recorded about itself: package version, settings."""
    return json.loads((run_dir / "baseline" / "baseline.json").read_text())


if __name__ == "__main__":
    main()
