"""Accuracy benchmark: SpotOn against a ByteTrack baseline and a ground-truth oracle, on the
generated scene suite.

    make bench-accuracy
    .venv/bin/python bench/accuracy.py [--suite fixed|validation] [--scenes NAME ...] [--out DIR]

For each scene of ``spoton_inference.scenes.suite`` (generated once into ``var/bench/scenes/``,
regenerated when its config changes):

1. the real service processes it, one stack for the whole run (the one in
   ``var/stack.json`` when up, else an embedded one under ``var/bench/data``); its exports,
   raw detections included, land in ``var/bench/out/<scene>/ours/``;
2. the baseline, ``trackers``' ByteTrackTracker per camera with no cross-camera
   association, runs on exactly those detections (``bench/baseline_bytetrack.py`` in
   ``.venv-baseline``) into ``.../baseline/``;
3. the oracle puts ground-truth ids on those detections (``accuracy_lib/oracle.py``) into
   ``.../oracle/``: perfect association with this detector;
4. all three are scored with py-motmetrics (per-camera MOTA, IDF1, ID switches; cross-camera
   IDF1 over global ids), plus detection recall, map-position error and frames/s.

It prints a table, PASS/FAIL per target and scene, writes ``DIR/accuracy.json`` (default
``bench/results``; ``accuracy-validation.json`` for the validation suite, the one to tune
on) and ends with the one-line summary. The exit code is 0 whatever the
scores; only a crash (a failed task, say) is an error.
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
from accuracy_lib.report import checks_text, machine_info, mean_cross_idf1, scene_json, summary_line, table, write_json
from accuracy_lib.service import process_scenes
from accuracy_lib.targets import check_scene

from spoton_inference.scenes.suite import SUITES, build, describe, is_easy
from spoton_inference.settings import REPO_ROOT, Settings

BENCH_VAR = REPO_ROOT / "var" / "bench"
DEFAULT_RESULTS = REPO_ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="fixed", help="fixed (of record) or validation")
    parser.add_argument("--scenes", nargs="+", metavar="NAME", help="a subset of the suite (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS, help="where accuracy.json goes")
    args = parser.parse_args(argv)
    scenes = SUITES[args.suite]()
    if args.scenes:
        unknown = sorted(set(args.scenes) - {name for name, _ in scenes})
        if unknown:
            parser.error(f"unknown scenes {unknown}; the suite has {[name for name, _ in scenes]}")
        scenes = [(name, config) for name, config in scenes if name in args.scenes]
    require_baseline_venv()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    started, load_start = time.monotonic(), os.getloadavg()[0]
    for name, seconds in build(BENCH_VAR / "scenes", scenes=scenes).items():
        print(f"scene {name}: {'cached' if seconds is None else f'generated in {seconds:.0f} s'}", flush=True)
    env_dirs = {name: BENCH_VAR / "scenes" / name for name, _ in scenes}
    run_dirs = {name: BENCH_VAR / "out" / name for name, _ in scenes}
    # SPOTON_* variables apply (a dropped-in embedder's calibration, say); the data stays the bench's own.
    settings = Settings.from_env({**os.environ, "SPOTON_DATA_DIR": str(BENCH_VAR / "data")})
    runs = asyncio.run(process_scenes(env_dirs, {name: d / "ours" for name, d in run_dirs.items()}, settings))
    results = [
        evaluate_scene(
            name,
            describe(config),
            is_easy(name),
            env_dirs[name],
            run_dirs[name],
            runs[name],
            config.fps,
            settings.detection_threshold,
        )
        for name, config in scenes
    ]
    checks = {r.name: check_scene(r) for r in results}
    wall_s, load_end = time.monotonic() - started, os.getloadavg()[0]

    json_path = args.out / ("accuracy.json" if args.suite == "fixed" else f"accuracy-{args.suite}.json")
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
                "baseline": _baseline_info(run_dirs[scenes[0][0]]),
                "suite": args.suite,
                "easy_scenes": [name for name, _ in scenes if is_easy(name)],
            },
            "scenes": [scene_json(r, checks[r.name]) for r in results],
            "mean_cross_idf1": mean_cross_idf1(results),
        },
    )
    print(f"\n{table(results)}\n\n{checks_text(checks)}\n")
    print(
        f"wall time {wall_s:.0f} s (1-min load average {load_start:.1f} at start, {load_end:.1f} at end); {json_path}"
    )
    print(summary_line(results))


def _baseline_info(run_dir: Path) -> object:
    """What ``baseline_bytetrack.py`` recorded about itself: package version, settings."""
    return json.loads((run_dir / "baseline" / "baseline.json").read_text())


if __name__ == "__main__":
    main()
