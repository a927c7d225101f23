"""End-to-end speed of the tracking, against another commit's, in one run on one machine.

    .venv/bin/python bench/tracking_speed.py [--baseline COMMIT] [--rounds N] [--scenes NAME ...]

Checks ``COMMIT`` (default: the last commit before the tracker was rebuilt) out into a git
worktree under ``var/bench/speed/``, then, round after round, processes the same scenes
through the real service (an embedded stack per run, as ``spoton process`` does) three ways:

- ``baseline``: the service at ``COMMIT``;
- ``online``: this tree with ``SPOTON_REFINE_RECORDED=false``, the online path alone;
- ``refined``: this tree as shipped, refinement included.

Each run reports global frames over the task's wall time (registration, watching and
downloading the exports included, as ``bench/accuracy.py`` measures it). It prints the
median frames/s of each way per scene and the ratios to the baseline, and writes
``DIR/tracking_speed.json`` (default ``bench/results``). The machine's load skews all three
alike within a round; the rounds interleave them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from accuracy_lib.report import machine_info
from accuracy_lib.scenes import BENCH_VAR, BenchScene, generated_scenes, real_scenes

from spoton_inference.settings import REPO_ROOT

BASELINE_COMMIT = "1036ed9"
DEFAULT_SCENES = ("pets09-s2l1", "tud-campus", "s2-mild-crossings-v1", "s6-hard-crowd-v1")
DEFAULT_RESULTS = REPO_ROOT / "bench" / "results"
# Run by each way in its own interpreter: process the scenes on one embedded stack, print JSON.
DRIVER = """
import asyncio, json, sys, tempfile
from pathlib import Path
from spoton_client.client import SpotOnClient
from spoton_client.process import process_environment
from spoton_inference.launch import full_stack
from spoton_inference.settings import Settings
try:
    from spoton_inference.launch import local_api_key
except ImportError:  # a commit from before authentication
    local_api_key = None

async def main(env_dirs):
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({**__import__("os").environ, "SPOTON_DATA_DIR": tmp + "/data"})
        async with full_stack(settings) as stack:
            # The admin key exists once the service has started.
            credentials = {"api_key": local_api_key(settings)} if local_api_key else {}
            async with SpotOnClient(stack.endpoints.grpc_target, **credentials) as client:
                for env_dir in env_dirs:
                    out_dir = Path(tmp) / "out" / Path(env_dir).name
                    result = await process_environment(client, Path(env_dir), out_dir, show_progress=False)
                    if result.state != "completed":
                        raise SystemExit(f"{env_dir}: {result.state} {result.error}")
                    out[Path(env_dir).name] = {"frames": result.frames, "wall_s": result.wall_s}
    print(json.dumps(out))

asyncio.run(main(sys.argv[1:]))
"""


def worktree(commit: str) -> Path:
    """A checkout of ``commit`` beside the bench's data (made once, kept)."""
    path = BENCH_VAR / "speed" / commit
    if not (path / ".git").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO_ROOT, check=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=REPO_ROOT, check=True)
    return path


def run(way: str, source: Path, scenes: list[BenchScene]) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": f"{source / 'inference'}{os.pathsep}{source / 'clients'}"}
    env["SPOTON_REFINE_RECORDED"] = "false" if way == "online" else "true"
    # The same models for every way (a worktree has no built ONNX files).
    env["SPOTON_MODEL_REPOSITORY"] = str(REPO_ROOT / "model_repository")
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *(str(s.env_dir) for s in scenes)],
        env=env,
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{way} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE_COMMIT)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenes", nargs="+", default=list(DEFAULT_SCENES))
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    known = {s.name: s for s in [*real_scenes(), *generated_scenes("validation"), *generated_scenes("fixed")]}
    missing = [n for n in args.scenes if n not in known or not known[n].env_dir.is_dir()]
    if missing:
        parser.error(f"unknown or ungenerated scenes {missing} (bench/accuracy.py generates the suites)")
    scenes = [known[n] for n in args.scenes]
    sources = {"baseline": worktree(args.baseline), "online": REPO_ROOT, "refined": REPO_ROOT}
    fps: dict[str, dict[str, list[float]]] = {way: {s.name: [] for s in scenes} for way in sources}
    for round_ in range(args.rounds):
        for way, source in sources.items():
            for name, r in run(way, source, scenes).items():
                fps[way][name].append(r["frames"] / r["wall_s"])
            print(f"round {round_ + 1}: {way} done", flush=True)
    medians = {way: {n: statistics.median(v) for n, v in per.items()} for way, per in fps.items()}
    print(f"\n{'scene':26} {'baseline':>9} {'online':>8} {'refined':>8} {'online/base':>12} {'refined/base':>13}")
    for s in scenes:
        b, o, r = (medians[w][s.name] for w in ("baseline", "online", "refined"))
        print(f"{s.name:26} {b:9.1f} {o:8.1f} {r:8.1f} {o / b:12.2f} {r / b:13.2f}")
    ratio = {
        w: statistics.fmean(medians[w][s.name] / medians["baseline"][s.name] for s in scenes)
        for w in ("online", "refined")
    }
    print(f"mean ratio to the baseline: online {ratio['online']:.2f}, refined {ratio['refined']:.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "tracking_speed.json"
    path.write_text(
        json.dumps(
            {
                "machine": machine_info(),
                "baseline_commit": args.baseline,
                "fps": fps,
                "median_fps": medians,
                "mean_ratio": ratio,
            },
            indent=1,
        )
        + "\n"
    )
    print(path)


if __name__ == "__main__":
    main()
