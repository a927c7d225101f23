"""Replay the tracking core on the detections of the last ``make bench-accuracy`` run.

    .venv/bin/python bench/replay.py [--suite fixed|validation] [--scenes NAME ...] [--features model|ground-truth]
                                     [--set tracker.min_hits=3 --set association.max_cost=0.6 ...]

For tuning and diagnosis, in seconds per scene rather than a service run: the same
detections (``var/bench/out/<scene>/ours/<cam>.detections.txt``), the same
:class:`MultiCameraTracker`, with either the default embedder's features (computed once
through an embedded Triton and cached under ``var/bench/cache``) or ground-truth identity
features (a perfect embedder). Prints ours against the oracle per scene. Numbers of record
come from ``make bench-accuracy``, which runs the real service.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
from pathlib import Path

from accuracy_lib.oracle import write_oracle
from accuracy_lib.replay import Features, ground_truth_features, load_detections, model_features, replay

from spoton_client.scoring import score_environment
from spoton_inference.core.environment import load_environment_dir
from spoton_inference.pipeline.associate import AssociationConfig
from spoton_inference.pipeline.multicam import tracking_configs
from spoton_inference.pipeline.track import TrackerConfig
from spoton_inference.scenes.suite import SUITES
from spoton_inference.settings import REPO_ROOT, Settings

BENCH_VAR = REPO_ROOT / "var" / "bench"


def _configs(assignments: list[str], fps: float, threshold: float) -> tuple[TrackerConfig, AssociationConfig]:
    settings = dataclasses.replace(Settings.from_env(), detection_threshold=threshold)
    tracker, association = tracking_configs(settings, fps)
    for item in assignments:
        key, _, value = item.partition("=")
        which, _, field = key.partition(".")
        target = {"tracker": tracker, "association": association}[which]
        kind = type(getattr(target, field))
        new = dataclasses.replace(target, **{field: kind(value)})
        tracker, association = (new, association) if which == "tracker" else (tracker, new)
    return tracker, association


async def _features(kind: str, names: list[str]) -> dict[str, Features]:
    dets = {}
    for name in names:
        env = load_environment_dir(BENCH_VAR / "scenes" / name)
        dets[name] = (env, load_detections(BENCH_VAR / "out" / name / "ours", [c.camera_id for c in env.cameras]))
    if kind == "ground-truth":
        return {n: ground_truth_features(BENCH_VAR / "scenes" / n / "ground_truth", d) for n, (_, d) in dets.items()}
    from spoton_inference.embedded.triton import EmbeddedTriton

    with tempfile.TemporaryDirectory() as tmp:
        triton = EmbeddedTriton(Settings(data_dir=Path(tmp)))
        await triton.start()
        try:
            return {
                n: await model_features(env, d, triton.grpc_url, BENCH_VAR / "cache") for n, (env, d) in dets.items()
            }
        finally:
            await triton.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="fixed", help="validation is the one to tune on")
    parser.add_argument("--scenes", nargs="+", metavar="NAME")
    parser.add_argument("--features", choices=("model", "ground-truth"), default="model")
    parser.add_argument("--set", action="append", default=[], metavar="tracker.FIELD=V|association.FIELD=V")
    args = parser.parse_args(argv)
    scenes = [(n, c) for n, c in SUITES[args.suite]() if not args.scenes or n in args.scenes]
    missing = [n for n, _ in scenes if not (BENCH_VAR / "out" / n / "ours").is_dir()]
    if missing:
        parser.error(f"no service run of {missing}: run bench/accuracy.py --suite {args.suite} first")
    features = asyncio.run(_features(args.features, [n for n, _ in scenes]))
    threshold = Settings().detection_threshold
    ratios, cross = [], []
    print(f"{'scene':24} {'cam IDF1':>9} {'oracle':>7} {'IDsw':>5} {'cross':>7} {'oracle':>7} {'ratio':>6}")
    for name, config in scenes:
        env_dir, run = BENCH_VAR / "scenes" / name, BENCH_VAR / "out" / name
        env = load_environment_dir(env_dir)
        cams = [c.camera_id for c in env.cameras]
        out = BENCH_VAR / "replay" / name / args.features
        tracker, association = _configs(args.set, config.fps, threshold)
        replay(env, load_detections(run / "ours", cams), features[name], out, tracker, association)
        write_oracle(env_dir / "ground_truth", run / "ours", run / "oracle", cams, threshold)
        ours_cam, ours_cross = score_environment(env_dir / "ground_truth", out, cams)
        oracle_cam, oracle_cross = score_environment(env_dir / "ground_truth", run / "oracle", cams)
        ratio = ours_cross.idf1 / oracle_cross.idf1
        ratios.append(ratio)
        cross.append(ours_cross.idf1)
        print(
            f"{name:24} {statistics.fmean(s.idf1 for s in ours_cam.values()):9.3f}"
            f" {statistics.fmean(s.idf1 for s in oracle_cam.values()):7.3f}"
            f" {statistics.fmean(s.id_switches for s in ours_cam.values()):5.1f}"
            f" {ours_cross.idf1:7.3f} {oracle_cross.idf1:7.3f} {ratio:6.2f}"
        )
    print(f"mean cross IDF1 {statistics.fmean(cross):.3f}, min ratio to oracle {min(ratios):.2f}")


if __name__ == "__main__":
    main()
