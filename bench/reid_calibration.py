"""Re-ID self-calibration: does a task fit what a hand measurement finds, for two embedders?

    .venv/bin/python bench/reid_calibration.py [--suites real validation] [--out DIR]

For the default embedder and for a different one of our making (``bench/alt_embedder.py``:
mid-level MobileNetV2 features, float input, no colour histograms), on the detections of
the last ``make bench-accuracy`` run:

1. every detection is embedded through an embedded Triton serving that embedder (cached
   under ``var/bench/cache``);
2. **hand measurement**, with the ground truth: the median cosine distance between two
   confident detections of one person in one camera 3 to 10 frames apart, and between two
   people in one frame of one camera, pooled over the scenes;
3. **self-calibration**, without it: the tracking replayed with ``SPOTON_REID_SELF_CALIBRATE``
   on, starting from the default embedder's constants as the prior; the fit it ends with,
   per scene, and the median over scenes;
4. **association**: refined cross-camera IDF1 (per-camera IDF1 for real footage), mean over
   the scenes, with the calibration (a) self-fitted, (b) fixed at the hand measurement, (c)
   fixed at the default embedder's constants.

Prints a table per embedder and writes ``DIR/reid_calibration.json`` (default ``bench/results``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
from accuracy_lib.matching import iou_xywh, match_boxes
from accuracy_lib.replay import Features, load_detections, model_features, replay, service_setup
from accuracy_lib.scenes import BENCH_VAR, REAL_SUITE, BenchScene, generated_scenes, real_scenes
from alt_embedder import build as build_alt

from spoton_client.scoring import read_mot, score_environment
from spoton_inference.files.environment_dir import load_environment_dir
from spoton_inference.settings import REPO_ROOT, Settings

# Same-person pairs as the self-calibration takes them: crops of one track a few frames apart
# (the tracker refreshes a track's crop every few frames).
SAME_GAP_FRAMES = (3, 10)
DEFAULT_RESULTS = REPO_ROOT / "bench" / "results"


def hand_pairs(scene: BenchScene, features: Features, start_score: float) -> tuple[list[float], list[float]]:
    """Distances of ground-truth same-person pairs (one camera, 3 to 10 frames apart) and different-person pairs."""
    env = load_environment_dir(scene.env_dir)
    cams = [c.camera_id for c in env.cameras]
    detections = load_detections(BENCH_VAR / "out" / scene.name / "ours", cams)
    same: list[float] = []
    different: list[float] = []
    for cam in cams:
        gt = read_mot(scene.gt_dir / f"{cam}.txt")
        by_person: dict[int, list[tuple[int, np.ndarray]]] = {}
        for frame, dets in detections[cam].items():
            if frame not in gt or frame not in features.get(cam, {}):
                continue
            confident = np.flatnonzero(dets.scores >= start_score)
            ids, boxes = gt[frame]
            in_frame = []
            for g, d in match_boxes(boxes, dets.boxes[confident]):
                vector = features[cam][frame][confident[d]]
                by_person.setdefault(int(ids[g]), []).append((frame, vector))
                in_frame.append((dets.boxes[confident[d]], vector))
            # Two people apart in one frame (overlapping boxes left out, as the sampler does).
            for i in range(len(in_frame)):
                for j in range(i + 1, len(in_frame)):
                    if iou_xywh(in_frame[i][0], in_frame[j][0])[0, 0] <= 0.0:
                        different.append(1.0 - float(in_frame[i][1] @ in_frame[j][1]))
        for sightings in by_person.values():
            sightings.sort(key=lambda fv: fv[0])
            for k, (f0, a) in enumerate(sightings):
                later = next((b for f1, b in sightings[k + 1 :] if f1 - f0 >= SAME_GAP_FRAMES[0]), None)
                gap = next((f1 - f0 for f1, _ in sightings[k + 1 :] if f1 - f0 >= SAME_GAP_FRAMES[0]), None)
                if later is not None and gap is not None and gap <= SAME_GAP_FRAMES[1]:
                    same.append(1.0 - float(a @ later))
    return same, different


async def embed_all(scenes: list[BenchScene], repository: Path) -> dict[str, Features]:
    from spoton_inference.embedded.triton import EmbeddedTriton

    with tempfile.TemporaryDirectory() as tmp:
        triton = EmbeddedTriton(Settings(data_dir=Path(tmp), model_repository=repository))
        await triton.start()
        try:
            out = {}
            for scene in scenes:
                env = load_environment_dir(scene.env_dir)
                dets = load_detections(BENCH_VAR / "out" / scene.name / "ours", [c.camera_id for c in env.cameras])
                out[scene.name] = await model_features(env, dets, triton.grpc_url, BENCH_VAR / "cache", repository)
            return out
        finally:
            await triton.stop()


def associate(scene: BenchScene, features: Features, start_score: float, **calibration: object) -> tuple[float, tuple]:
    """The scene's refined IDF1 (cross-camera; per camera on real footage) and the fit it ended with."""
    env = load_environment_dir(scene.env_dir)
    cams = [c.camera_id for c in env.cameras]
    out = BENCH_VAR / "calibration" / scene.name
    result = replay(
        env,
        load_detections(BENCH_VAR / "out" / scene.name / "ours", cams),
        features,
        out,
        service_setup(start_score, scene.fps, **calibration),
    )
    per_camera, cross = score_environment(scene.gt_dir, out, cams)
    score = statistics.fmean(s.idf1 for s in per_camera.values()) if scene.is_real else cross.idf1
    fit = result.fit
    return score, (fit.calibration.same, fit.calibration.different, fit.same_pairs, fit.different_pairs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", default=[REAL_SUITE, "validation"])
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    scenes = [s for suite in args.suites for s in (real_scenes() if suite == REAL_SUITE else generated_scenes(suite))]
    scenes = [s for s in scenes if (BENCH_VAR / "out" / s.name / "ours").is_dir()]
    if not scenes:
        parser.error("no service run to read: run bench/accuracy.py first")
    defaults = Settings()
    start_score = defaults.detection_threshold
    embedders = {
        "default": REPO_ROOT / "model_repository",
        "alt (mid-level MobileNetV2, no colour)": build_alt(BENCH_VAR / "alt_models"),
    }
    report = {}
    for name, repository in embedders.items():
        features = asyncio.run(embed_all(scenes, repository))
        same, different = [], []
        for scene in scenes:
            s, d = hand_pairs(scene, features[scene.name], start_score)
            same += s
            different += d
        hand = (float(np.median(same)), float(np.median(different)))
        runs = {
            "self-calibrated": {},
            "fixed at the hand measurement": {
                "reid_self_calibrate": False,
                "reid_same_distance": hand[0],
                "reid_different_distance": hand[1],
            },
            "fixed at the default's constants": {"reid_self_calibrate": False},
        }
        scores: dict[str, float] = {}
        fits = {}
        for run, calibration in runs.items():
            per_scene = {s.name: associate(s, features[s.name], start_score, **calibration) for s in scenes}
            scores[run] = statistics.fmean(v[0] for v in per_scene.values())
            if run == "self-calibrated":
                fits = {n: v[1] for n, v in per_scene.items()}
        fitted = (float(np.median([f[0] for f in fits.values()])), float(np.median([f[1] for f in fits.values()])))
        print(f"\n{name}")
        print(f"  hand measurement (ground truth, {len(same)} same / {len(different)} different pairs):")
        print(f"    same {hand[0]:.3f}  different {hand[1]:.3f}")
        print(f"  self-calibrated (median over {len(fits)} scenes): same {fitted[0]:.3f}  different {fitted[1]:.3f}")
        for scene_name, (fs, fd, ns, nd) in fits.items():
            print(f"    {scene_name:28} same {fs:.3f} different {fd:.3f} ({ns} / {nd} pairs)")
        print(
            f"  prior (the default's constants): same {defaults.reid_same_distance:.3f}  "
            f"different {defaults.reid_different_distance:.3f}"
        )
        for run, score in scores.items():
            print(f"  refined IDF1, calibration {run:34} {score:.3f}")
        report[name] = {
            "hand": {"same": hand[0], "different": hand[1], "same_pairs": len(same), "different_pairs": len(different)},
            "self_calibrated": {"same": fitted[0], "different": fitted[1], "per_scene": fits},
            "refined_idf1": scores,
        }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "reid_calibration.json"
    path.write_text(json.dumps({"scenes": [s.name for s in scenes], "embedders": report}, indent=1) + "\n")
    print(f"\n{path}")


if __name__ == "__main__":
    main()
