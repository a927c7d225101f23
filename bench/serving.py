"""Serving benchmark: each figure of the serving path beside its ceiling, in one run.

    make bench-serving
    .venv/bin/python bench/serving.py [--parts detect health stream task sse] [--detect-calls 300]
        [--subscribers 200] [--out DIR]

It starts the embedded stack (Triton, PostgreSQL, Redis, the inference service, the facade)
on free ports under ``var/bench/serving-data`` (``--stack-file`` names a running stack to use
instead), takes its frames from a generated 640x480 scene (``serving_lib/frames.py``) and
measures, pair by pair, back to back:

(a) ``Detect`` (one JPEG frame) through SpotOn with ghz at concurrency 1, 2 and 4, against
    the detector alone in Triton with perf_analyzer (``.venv/perf-analyzer``, installed by
    ``make bench-serving``; the target's ceiling), and beside it tritonclient in this process
    making the same calls through Triton's system shared memory (the ceiling when
    perf_analyzer is not installed);
(b) ``StreamFrames`` on one stream, 1 and 4 frames in flight, against the same detector and
    embedder calls made directly on Triton (``serving_lib/streams.py``);
(c) a processing task's end-to-end camera frames/s against a replay of its Triton calls
    (``serving_lib/task.py`` says how the replay is derived);
(d) SSE fan-out: ``--subscribers`` clients on one task's events through the facade: share
    connected, events lost against WatchTask's full list, lag from ``emitted_at`` to receipt;
(e) ``GetHealth`` and the standard ``Health/Check`` under ``ghz -c 50 -n 20000``, against
    ``Health/Check`` on a bare grpc.aio server (``serving_lib/bare_grpc.py``).

It prints a table with ratios and PASS/MISS per target (``serving_lib/targets.py``) and
writes ``DIR/serving.json`` (default ``bench/results``). The exit code is 0 whatever the
figures; it is never a timed unit test.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import os
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from serving_lib import bare_grpc, perf_analyzer, process_cpu
from serving_lib.frames import Scene, jpeg, load_scene
from serving_lib.ghz import GHZ, GhzCall, error_text, run_ghz, summary_from_report
from serving_lib.report import Row, machine_info, rate, table, write_json
from serving_lib.sse import fan_out
from serving_lib.stats import Summary, percentile, ratio
from serving_lib.streams import direct_ceiling, stream_throughput
from serving_lib.targets import detect_target, health_target, sse_target, task_target
from serving_lib.task import embedder_calls, exported_detections, follow_task, replay, run_task
from serving_lib.triton_direct import DirectTriton, run_concurrent

from spoton.v1 import inference_pb2
from spoton_client.client import SpotOnClient
from spoton_client.process import wait_until_serving
from spoton_inference.embedded.endpoints import StackEndpoints
from spoton_inference.embedded.ports import pick_free_ports
from spoton_inference.launch import local_api_key, stack_for_run
from spoton_inference.settings import REPO_ROOT, Settings

DEFAULT_RESULTS = REPO_ROOT / "bench" / "results"
DATA_DIR = REPO_ROOT / "var" / "bench" / "serving-data"
# Nobody writes it unless asked: by default the bench starts a stack of its own.
STACK_FILE = REPO_ROOT / "var" / "bench" / "serving-stack.json"
DETECT_CONCURRENCY = (1, 2, 4)
STREAM_IN_FLIGHT = (1, 4)
HEALTH_CONCURRENCY, HEALTH_CALLS = 50, 20000
HEALTH_CHECK = "grpc.health.v1.Health/Check"
WARM_UP_CALLS = 20
DETECTOR, EMBEDDER = "detector", "reid"
# A Triton at one of these maps this host's shared memory.
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclasses.dataclass
class Bench:
    endpoints: StackEndpoints
    settings: Settings
    api_key: str
    client: SpotOnClient
    triton: DirectTriton
    scene: Scene
    environment_id: str
    args: argparse.Namespace
    rows: list[Row] = dataclasses.field(default_factory=list)
    results: dict[str, Any] = dataclasses.field(default_factory=dict)

    def ghz(self, method: str, concurrency: int, total: int, **kw: Any) -> GhzCall:
        return GhzCall(method, concurrency, total, self.api_key, **kw)


async def detect_vs_triton(bench: Bench) -> None:
    frame = bench.scene.detect_frame()
    threshold = bench.settings.detection_threshold
    with tempfile.NamedTemporaryFile(suffix=".bin") as request:
        request.write(inference_pb2.DetectRequest(encoded=jpeg(frame)).SerializeToString())
        request.flush()
        detect = "spoton.v1.InferenceService/Detect"
        await run_ghz(bench.endpoints.grpc_target, bench.ghz(detect, 1, WARM_UP_CALLS, data_file=Path(request.name)))
        out = []
        direct_source = f"tritonclient in-process ({bench.triton.transport})"
        for c in DETECT_CONCURRENCY:
            calls = bench.args.detect_calls
            direct = await run_concurrent([lambda: bench.triton.detect(frame, threshold)] * calls, c)
            ceilings = {direct_source: direct}
            if perf_analyzer.available():
                ceilings["perf_analyzer"] = await perf_analyzer.detector_ceiling(
                    bench.endpoints.triton_grpc_url, DETECTOR, frame, threshold, c, calls
                )
            report = await run_ghz(
                bench.endpoints.grpc_target, bench.ghz(detect, c, calls, data_file=Path(request.name))
            )
            ours = summary_from_report(report)
            # The target is against perf_analyzer, as the issue measured; the in-process
            # calls are shown beside it (through shared memory they may beat it).
            for k, (source, triton) in enumerate(reversed(ceilings.items())):
                r, added = ratio(ours.rps, triton.rps), ours.p50_ms - triton.p50_ms
                figure = f"Detect c={c} (ghz) vs {source}" if k == 0 else f"  vs {source}"
                check = detect_target(r, added) if k == 0 else None
                bench.rows.append(Row(figure, rate(ours) if k == 0 else "", rate(triton), r, check))
                bench.rows.append(Row("    added p50", f"{added:+.1f} ms", "", None, None))
            out.append(
                {
                    "concurrency": c,
                    "ghz": ours.to_json(),
                    "errors": error_text(report),
                    "ceilings": {
                        source: {**t.to_json(), "ratio": ratio(ours.rps, t.rps), "added_p50_ms": ours.p50_ms - t.p50_ms}
                        for source, t in ceilings.items()
                    },
                }
            )
    bench.results["detect"] = out


async def get_health(bench: Bench) -> None:
    """GetHealth and the standard Health/Check through SpotOn, each beside Health/Check on a bare
    grpc.aio server (``serving_lib/bare_grpc.py``): the floor of one Python gRPC process here.

    The bare server is measured before and after SpotOn, and the faster run is the ceiling, so
    load that drifts during the runs cannot flatter the ratios. Each server's CPU time per call
    is measured too (``serving_lib/process_cpu.py``): unlike throughput, other load on the
    machine does not change it, and ``1e6 / us_per_call`` bounds what one process can answer.
    """
    calls = bench.args.health_calls
    check_call = bench.ghz(HEALTH_CHECK, HEALTH_CONCURRENCY, calls, protoset=None)
    spoton_call = bench.ghz("spoton.v1.SystemService/GetHealth", HEALTH_CONCURRENCY, calls)
    spoton_pid = process_cpu.listening_pid(_port(bench.endpoints.grpc_target))
    bare_port = pick_free_ports(1)[0]
    async with bare_grpc.serving(bare_port) as bare_target:
        bare_pid = process_cpu.listening_pid(bare_port)
        runs: list[tuple[str, int, GhzCall, str]] = [
            ("bare", bare_pid, check_call, bare_target),
            ("GetHealth", spoton_pid, spoton_call, bench.endpoints.grpc_target),
            ("Health/Check", spoton_pid, check_call, bench.endpoints.grpc_target),
            ("bare", bare_pid, check_call, bare_target),
        ]
        measured: list[tuple[str, Summary, float, str]] = []
        for name, pid, call, target in runs:
            with process_cpu.measured(pid) as cpu:
                report = await run_ghz(target, call)
            summary = summary_from_report(report)
            measured.append((name, summary, cpu.us_per_call(summary.count + summary.errors), error_text(report)))
    bare_runs = [m for m in measured if m[0] == "bare"]
    _, bare, bare_cpu_us, _ = max(bare_runs, key=lambda m: m[1].rps)
    ceiling_text = f"{rate(bare)} (bare grpc.aio Health/Check); CPU {bare_cpu_us:.0f} us/call"
    results: dict[str, Any] = {"bare_grpc_aio_health_check": []}
    for name, summary, cpu_us, errors in measured:
        entry = {**summary.to_json(), "errors": errors, "cpu_us_per_call": cpu_us}
        if name == "bare":
            results["bare_grpc_aio_health_check"].append(entry)
            continue
        r = ratio(summary.rps, bare.rps)
        check = health_target(summary.rps, summary.p99_ms, summary.errors) if name == "GetHealth" else None
        ours = f"{rate(summary)}; CPU {cpu_us:.0f} us/call"
        bench.rows.append(Row(f"{name} ghz -c {HEALTH_CONCURRENCY}", ours, ceiling_text, r, check))
        key = "get_health" if name == "GetHealth" else "spoton_health_check"
        results[key] = {**entry, "ratio_to_bare": r, "cpu_ratio_to_bare": ratio(cpu_us, bare_cpu_us)}
    bench.results["get_health"] = results


async def stream_frames(bench: Bench) -> None:
    camera = bench.scene.camera_ids[0]
    frames = bench.scene.frames[camera][: bench.args.stream_frames]
    jpegs = [jpeg(f) for f in frames]
    out = []
    for n in STREAM_IN_FLIGHT:
        ceiling = await direct_ceiling(bench.triton, frames, bench.settings.detection_threshold, n)
        ours, dropped = await stream_throughput(
            bench.endpoints.grpc_target, bench.api_key, bench.environment_id, camera, jpegs, n
        )
        r = ratio(ours.rps, ceiling.rps)
        text = rate(ours, "frames/s") + (f", {dropped} dropped" if dropped else "")
        ceiling_text = f"{rate(ceiling, 'frames/s')} (direct, {bench.triton.transport})"
        bench.rows.append(Row(f"StreamFrames {n} in flight", text, ceiling_text, r, None))
        out.append(
            {"in_flight": n, "stream": ours.to_json(), "dropped": dropped, "triton": ceiling.to_json(), "ratio": r}
        )
    bench.results["stream_frames"] = out


async def task_vs_replay(bench: Bench) -> None:
    camera_frames = sum(len(f) for f in bench.scene.frames.values())
    # Where the CPU goes, in the task and in its replay: the service's process (decoding,
    # tracking, association, publishing, storing) and Triton's (the models).
    service_pid = process_cpu.listening_pid(_port(bench.endpoints.grpc_target))
    triton_pid = process_cpu.listening_pid(_port(bench.endpoints.triton_grpc_url))
    with process_cpu.measured(service_pid) as task_service, process_cpu.measured(triton_pid, tree=True) as task_triton:
        run = await run_task(bench.client, bench.environment_id, camera_frames)
    with tempfile.TemporaryDirectory(prefix="spoton-serving-") as tmp:
        await bench.client.download_exports(run.task_id, Path(tmp))
        detections = exported_detections(Path(tmp))
    crops = await embedder_calls(bench.triton, bench.scene.env_dir, bench.scene.frames, detections, bench.settings)
    embed_calls, n_crops = sum(1 for c in crops if len(c)), sum(map(len, crops))
    with (
        process_cpu.measured(triton_pid, tree=True) as replay_triton,
        process_cpu.measured(os.getpid()) as replay_client,
    ):
        replay_fps = await replay(bench.triton, bench.scene.frames, crops)
    r = ratio(run.fps, replay_fps)
    cpu = {
        "task": {"service_s": task_service.seconds, "triton_s": task_triton.seconds, "wall_s": run.wall_s},
        "replay": {
            "triton_s": replay_triton.seconds,
            "client_s": replay_client.seconds,
            "wall_s": camera_frames / replay_fps if replay_fps else float("nan"),
        },
    }
    bench.rows.append(
        Row(
            f"task end to end ({run.state}, {camera_frames} camera frames)",
            f"{run.fps:.1f} frames/s",
            f"{replay_fps:.1f} frames/s (replay, {bench.triton.transport}, {embed_calls} embed calls, {n_crops} crops)",
            r,
            task_target(r),
        )
    )
    per_frame_ms = {k: 1e3 * v / camera_frames for k, v in cpu["task"].items() if k != "wall_s"}
    replay_ms = 1e3 * cpu["replay"]["triton_s"] / camera_frames
    cpu_text = f"CPU per frame: service {per_frame_ms['service_s']:.1f} ms, Triton {per_frame_ms['triton_s']:.1f} ms"
    replay_text = f"Triton {replay_ms:.1f} ms per frame in the replay"
    bench.rows.append(Row("  CPU of the task", cpu_text, replay_text, None, None))
    bench.results["task"] = {
        **dataclasses.asdict(run),
        "fps": run.fps,
        "replay_fps": replay_fps,
        "replay_embed_calls": embed_calls,
        "replay_crops": n_crops,
        "ratio": r,
        "cpu": cpu,
    }


def _port(address: str) -> int:
    """The port of ``host:port`` or of a URL."""
    return int(urllib.parse.urlsplit(address if "://" in address else f"//{address}").port or 0)


async def sse_fan_out(bench: Bench) -> None:
    camera_frames = sum(len(f) for f in bench.scene.frames.values())
    task = await bench.client.start_task(bench.environment_id)
    following = asyncio.create_task(follow_task(bench.client, task, camera_frames))
    # Where the CPU goes while 2 cores carry the task, the facade and the subscribers: the
    # facade's time per event delivered, and the subscriber processes' (children of this one,
    # ended within the block) per event read.
    facade_pid = process_cpu.listening_pid(_port(bench.endpoints.facade_url))
    with (
        process_cpu.measured(facade_pid) as facade_cpu,
        process_cpu.measured(os.getpid(), children=True) as client_cpu,
    ):
        subs, sequences, watch_lags = await fan_out(
            bench.endpoints.facade_url, bench.api_key, task.task_id, bench.args.subscribers, bench.client
        )
    run = await following
    full = set(sequences)
    connected = [s for s in subs if s.connected]
    share = len(connected) / len(subs)
    lost = sum(len(full - s.sequences) for s in connected)
    lags = [lag for s in connected for lag in s.lags_ms]
    p50, p99 = percentile(lags, 50), percentile(lags, 99)
    refused: dict[str, int] = {}
    for s in subs:
        if s.error:
            refused[s.error] = refused.get(s.error, 0) + 1
    resumes = sum(s.resumes for s in subs)
    ours = f"{len(connected)}/{len(subs)} connected, {lost} lost, lag p50 {p50:.0f} / p99 {p99:.0f} ms"
    ours += f", {resumes} resumes" if resumes else ""
    watch = f"WatchTask lag p50 {percentile(watch_lags, 50):.0f} / p99 {percentile(watch_lags, 99):.0f} ms"
    bench.rows.append(Row(f"SSE fan-out, {len(subs)} subscribers", ours, watch, None, sse_target(share, lost, p99)))
    bench.rows.append(Row("  task under fan-out", f"{run.fps:.1f} frames/s", "", None, None))
    delivered = sum(len(s.sequences) for s in connected)
    facade_us, client_us = facade_cpu.us_per_call(delivered), client_cpu.us_per_call(delivered)
    cpu_text = f"facade {facade_us:.0f} us, subscribers {client_us:.0f} us per event delivered"
    bench.rows.append(Row("  CPU of the fan-out", cpu_text, f"{run.wall_s:.0f} s of task", None, None))
    bench.results["sse"] = {
        "subscribers": len(subs),
        "connected": len(connected),
        "events": len(full),
        "lost": lost,
        "resumes": resumes,
        "lag_ms": {"p50": p50, "p99": p99, "max": max(lags, default=float("nan"))},
        "watch_task_lag_ms": {"p50": percentile(watch_lags, 50), "p99": percentile(watch_lags, 99)},
        "failures": refused,
        "task_fps_under_fan_out": run.fps,
        "cpu_s": {"facade": facade_cpu.seconds, "subscribers": client_cpu.seconds},
        "cpu_us_per_event_delivered": {"facade": facade_us, "subscribers": client_us},
    }


async def run(args: argparse.Namespace) -> None:
    scene = await asyncio.to_thread(load_scene)
    settings = Settings.from_env({**os.environ, "SPOTON_DATA_DIR": str(args.data_dir)})
    started, load_start = time.monotonic(), os.getloadavg()
    async with stack_for_run(settings, args.stack_file) as endpoints:
        settings = endpoints.apply_to(settings)
        api_key = local_api_key(settings) or ""
        async with SpotOnClient(endpoints.grpc_target, api_key=api_key) as client:
            await wait_until_serving(client)
            env = await client.register_environment(scene.env_dir)
            local = urllib.parse.urlsplit(f"//{endpoints.triton_grpc_url}").hostname in LOCAL_HOSTS
            triton = DirectTriton(
                endpoints.triton_grpc_url, DETECTOR, EMBEDDER, shared_memory=local and not args.no_shm
            )
            try:
                await triton.open()
                bench = Bench(endpoints, settings, api_key, client, triton, scene, env.environment_id, args)
                for part in args.parts:
                    print(f"measuring {part} ...", flush=True)
                    await PARTS[part](bench)
            finally:
                await triton.close()
    wall, load_end = time.monotonic() - started, os.getloadavg()
    json_path = args.out / "serving.json"
    write_json(
        json_path,
        {
            "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "wall_s": wall,
            # Triton and the service share the cores: figures are comparable only as ratios, at low load.
            "machine": {**machine_info(), "load_avg_start": load_start, "load_avg_end": load_end},
            **bench.results,
        },
    )
    print(f"\n{table(bench.rows)}\n")
    print(f"wall time {wall:.0f} s; 1/5/15-min load average {_load(load_start)} at start, {_load(load_end)} at end")
    print(f"written: {json_path}")


PARTS = {
    "detect": detect_vs_triton,
    "health": get_health,
    "stream": stream_frames,
    "task": task_vs_replay,
    "sse": sse_fan_out,
}


def _load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.1f}" for v in load)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="default: all, in this order")
    parser.add_argument("--detect-calls", type=int, default=300, help="Detect calls per concurrency (default 300)")
    parser.add_argument("--health-calls", type=int, default=HEALTH_CALLS, help=f"default {HEALTH_CALLS}")
    parser.add_argument("--stream-frames", type=int, default=120, help="frames per StreamFrames run (default 120)")
    parser.add_argument("--subscribers", type=int, default=200, help="SSE subscribers (default 200)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="the embedded stack's data directory")
    parser.add_argument("--stack-file", type=Path, default=STACK_FILE, help="use the stack it names when up")
    parser.add_argument("--no-shm", action="store_true", help="the direct Triton calls over gRPC, not shared memory")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS, help="where serving.json goes")
    args = parser.parse_args(argv)
    if not GHZ.is_file():
        parser.error(f"ghz is not at {GHZ} (see ../shared/tools/README.md)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
