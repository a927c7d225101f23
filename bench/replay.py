"""Replay the tracking (online and refined) on the detections of the last ``make bench-accuracy`` run.

    .venv/bin/python bench/replay.py [--suites real validation] [--scenes NAME ...] [--features model|ground-truth]
                                     [--set tracker.min_hits=3 --set refine.linking.max_gap_s=2 ...]

For tuning and diagnosis, in seconds per scene rather than a service run: the same detections
(``var/bench/out/<scene>/ours/<cam>.detections.txt``), the same online tracker and refinement
windows the runner drives, with either the default embedder's features (computed once through
an embedded Triton and cached under ``var/bench/cache``) or ground-truth identity features (a
perfect embedder). ``--set`` replaces a field of the tracking setup: ``tracker.*``,
``association.*``, ``refine.tracklets.*``, ``refine.linking.*``, ``refine.identities.*``,
``refine.fill.*``. Prints per scene the per-camera and cross-camera IDF1, online and refined,
beside the oracle's. Numbers of record come from ``make bench-accuracy``, which runs the real
service.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from accuracy_lib.oracle import write_oracle
from accuracy_lib.replay import (
    Features,
    ground_truth_features,
    load_detections,
    model_features,
    perfect_reid_setup,
    replay,
    service_setup,
)
from accuracy_lib.scenes import BENCH_VAR, REAL_SUITE, BenchScene, generated_scenes, real_scenes

from spoton_client.scoring import read_mot, score_environment
from spoton_inference.files.environment_dir import load_environment_dir
from spoton_inference.pipeline.tracking_settings import TrackingSetup
from spoton_inference.scenes.suite import SUITES
from spoton_inference.settings import Settings


def with_overrides(setup: TrackingSetup, assignments: list[str]) -> TrackingSetup:
    """``setup`` with ``path.to.field=value`` assignments applied (values cast to the field's type)."""
    for item in assignments:
        key, _, value = item.partition("=")
        path = key.split(".")
        setup = _replace(setup, path, value)
    return setup


def _replace(obj: object, path: list[str], value: str) -> object:
    head, rest = path[0], path[1:]
    current = getattr(obj, head)
    if rest:
        return dataclasses.replace(obj, **{head: _replace(current, rest, value)})  # type: ignore[type-var]
    kind = type(current)
    cast = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
    return dataclasses.replace(obj, **{head: cast})  # type: ignore[type-var]


async def _features(kind: str, scenes: list[BenchScene]) -> dict[str, Features]:
    detections = {}
    for scene in scenes:
        env = load_environment_dir(scene.env_dir)
        detections[scene.name] = (env, load_detections(_ours(scene), [c.camera_id for c in env.cameras]))
    if kind == "ground-truth":
        return {s.name: ground_truth_features(s.gt_dir, detections[s.name][1]) for s in scenes}
    from spoton_inference.embedded.triton import EmbeddedTriton

    with tempfile.TemporaryDirectory() as tmp:
        triton = EmbeddedTriton(Settings(data_dir=Path(tmp)))
        await triton.start()
        try:
            return {
                name: await model_features(env, dets, triton.grpc_url, BENCH_VAR / "cache")
                for name, (env, dets) in detections.items()
            }
        finally:
            await triton.stop()


def _ours(scene: BenchScene) -> Path:
    return BENCH_VAR / "out" / scene.name / "ours"


def _one(job: tuple[BenchScene, Features, str, list[str]]) -> tuple[str, dict[str, float], float]:
    scene, features, kind, assignments = job
    threshold = Settings.from_env().detection_threshold
    env = load_environment_dir(scene.env_dir)
    cams = [c.camera_id for c in env.cameras]
    make = perfect_reid_setup if kind == "ground-truth" else service_setup
    setup = with_overrides(make(threshold, scene.fps), assignments)
    out = BENCH_VAR / "replay" / scene.name / kind
    timing = replay(env, load_detections(_ours(scene), cams), features, out, setup)
    oracle_dir = BENCH_VAR / "out" / scene.name / "oracle"
    write_oracle(scene.gt_dir, _ours(scene), oracle_dir, cams, threshold)
    scores = {}
    for system, folder, infix in (("online", out, "online."), ("refined", out, ""), ("oracle", oracle_dir, "")):
        per_camera, cross = score_environment(scene.gt_dir, folder, cams, infix)
        scores[f"{system}_camera"] = statistics.fmean(s.idf1 for s in per_camera.values())
        scores[f"{system}_cross"] = cross.idf1
    for line in repeated_ids(out, cams):
        print(f"{scene.name}: {line}")
    return scene.name, scores, sum(timing.refine_s)


def repeated_ids(folder: Path, cameras: list[str]) -> list[str]:
    """Each exported file where one id has two boxes in one frame (TrackEval refuses such a run),
    as ``<file>: N frames, first F``; empty when every id is seen once a frame."""
    out = []
    for cam in cameras:
        for kind in ("local", "global", "online.local", "online.global"):
            frames = read_mot(folder / f"{cam}.{kind}.txt")
            bad = sorted(f for f, (ids, _) in frames.items() if len(set(ids.tolist())) < len(ids))
            if bad:
                out.append(f"{cam}.{kind}.txt: id repeated within a frame in {len(bad)} frames, first {bad[0]}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", choices=(REAL_SUITE, *SUITES), default=[REAL_SUITE, "validation"])
    parser.add_argument("--scenes", nargs="+", metavar="NAME")
    parser.add_argument("--features", choices=("model", "ground-truth"), default="model")
    parser.add_argument("--set", action="append", default=[], metavar="PATH.FIELD=VALUE")
    args = parser.parse_args(argv)
    scenes = [s for suite in args.suites for s in (real_scenes() if suite == REAL_SUITE else generated_scenes(suite))]
    scenes = [s for s in scenes if not args.scenes or s.name in args.scenes]
    missing = [s.name for s in scenes if not _ours(s).is_dir()]
    if missing:
        parser.error(f"no service run of {missing}: run bench/accuracy.py first")
    features = asyncio.run(_features(args.features, scenes))
    jobs = [(s, features[s.name], args.features, args.set) for s in scenes]
    with ProcessPoolExecutor(2) as pool:
        results = {name: (scores, seconds) for name, scores, seconds in pool.map(_one, jobs)}
    print(f"{'scene':28} {'IDF1 on':>8} {'ref':>6} {'orac':>6}  {'xIDF1 on':>8} {'ref':>6} {'orac':>6} {'refine s':>8}")
    for suite in args.suites:
        mine = [s.name for s in scenes if s.suite == suite]
        for name in mine:
            r, seconds = results[name]
            print(
                f"{name:28} {r['online_camera']:8.3f} {r['refined_camera']:6.3f} {r['oracle_camera']:6.3f}"
                f"  {r['online_cross']:8.3f} {r['refined_cross']:6.3f} {r['oracle_cross']:6.3f} {seconds:8.2f}"
            )
        if mine:
            mean = {k: statistics.fmean(results[n][0][k] for n in mine) for k in results[mine[0]][0]}
            print(
                f"{suite + ' mean':28} {mean['online_camera']:8.3f} {mean['refined_camera']:6.3f}"
                f" {mean['oracle_camera']:6.3f}  {mean['online_cross']:8.3f} {mean['refined_cross']:6.3f}"
                f" {mean['oracle_cross']:6.3f}"
            )


if __name__ == "__main__":
    main()
