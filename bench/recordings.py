"""Recordings in object storage against the same recordings on local disk, in one run.

``make bench-recordings`` starts a real S3 server (SeaweedFS, ``weed mini``, as the tests do)
behind a link limited to ``--link-mbit`` (a TCP proxy, ``recordings_lib/slow_link.py``: on
loopback a download takes milliseconds and prefetch would have nothing to hide), points the
embedded stack at it, uploads a generated scene (3 cameras, 3 batches), and runs tasks over it
alternately from the bucket and from local disk. Each bucket run reads a fresh prefix, so its
cache is cold: every batch is downloaded. The figure is the processing frame rate (camera
frames over the task's time from creation to its final status), bucket over disk; with
prefetch it should be at least 0.95. Each bucket run also reports the seconds it waited for
each batch's download (``tracking.json``): the first batch is always waited for, the later
ones were fetched while the one before was processed.

    .venv/bin/python bench/recordings.py [--rounds 3] [--link-mbit 32] [--out bench/results]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the S3 server the tests start (support/s3_server.py)

from recordings_lib.slow_link import SlowLink  # noqa: E402
from serving_lib.task import run_task  # noqa: E402
from support.s3_server import S3Server  # noqa: E402

from spoton_client.client import SpotOnClient  # noqa: E402
from spoton_client.process import wait_until_serving  # noqa: E402
from spoton_inference.launch import full_stack, local_api_key  # noqa: E402
from spoton_inference.pipeline.runner import TRACKING_EXPORT  # noqa: E402
from spoton_inference.scenes.config import demo_config  # noqa: E402
from spoton_inference.scenes.generate import generate  # noqa: E402
from spoton_inference.settings import Settings  # noqa: E402

TARGET_RATIO = 0.95
# The S3 link: slow enough that a batch takes a visible share of its processing time to download.
DEFAULT_LINK_MBIT = 32.0
BATCHES = 3
FRAMES_PER_BATCH = 60


def _upload(server: S3Server, scene: Path, bucket: str, prefix: str, environment_id: str) -> str:
    doc = json.loads((scene / "environment.json").read_text())
    server.put(bucket, f"{prefix}/environment.json", json.dumps({**doc, "id": environment_id}).encode())
    for video in sorted(scene.glob("cameras/*/sub_video_*.mp4")):
        server.put(bucket, f"{prefix}/{video.relative_to(scene)}", video)
    return f"s3://{bucket}/{prefix}"


async def measure(rounds: int, link_mbit: float, work: Path) -> dict:
    config = dataclasses.replace(demo_config(seed=11), frames_per_batch=FRAMES_PER_BATCH, n_batches=BATCHES)
    scene = await asyncio.to_thread(generate, config, work / "scene")
    camera_frames = len(config.cameras) * BATCHES * FRAMES_PER_BATCH
    with S3Server() as server:
        bucket = server.create_bucket()
        target = urllib.parse.urlsplit(server.url)
        async with SlowLink((str(target.hostname), int(target.port or 80)), link_mbit * 1e6 / 8) as port:
            endpoint = f"http://{target.hostname}:{port}"
            disk, s3, waits = await _alternate(server, bucket, endpoint, scene, camera_frames, rounds, work)
    ratio = statistics.median(s3) / statistics.median(disk)
    return {
        "scene": {
            "cameras": len(config.cameras),
            "batches": BATCHES,
            "camera_frames": camera_frames,
            "bytes": sum(p.stat().st_size for p in scene.glob("cameras/*/sub_video_*.mp4")),
        },
        "link_mbit": link_mbit,
        "fps": {"disk": disk, "bucket": s3},
        "bucket_over_disk": round(ratio, 3),
        "target": TARGET_RATIO,
        "pass": ratio >= TARGET_RATIO,
        "download_wait_s": waits,
        "load_average": os.getloadavg(),
    }


async def _alternate(
    server: S3Server, bucket: str, endpoint: str, scene: Path, camera_frames: int, rounds: int, work: Path
) -> tuple[list[float], list[float], list[list[float]]]:
    """Disk and bucket runs, alternating, on one stack reading S3 at ``endpoint``: the frame
    rates of each, and each bucket run's waits per batch."""
    settings = Settings.from_env(
        {
            **os.environ,
            "SPOTON_DATA_DIR": str(work / "data"),
            "SPOTON_S3_ENDPOINT_URL": endpoint,
            "SPOTON_S3_REGION": server.region,
            "SPOTON_S3_ACCESS_KEY_ID": server.access_key,
            "SPOTON_S3_SECRET_ACCESS_KEY": server.secret_key,
        }
    )
    disk: list[float] = []
    s3: list[float] = []
    waits: list[list[float]] = []
    async with full_stack(settings) as stack:
        settings = stack.endpoints.apply_to(settings)
        async with SpotOnClient(stack.endpoints.grpc_target, api_key=local_api_key(settings) or "") as client:
            await wait_until_serving(client)
            local = await client.register_environment(scene)
            for k in range(rounds):
                uri = await asyncio.to_thread(_upload, server, scene, bucket, f"run-{k}", f"bucket-{k}")
                remote = await client.register_environment(uri)
                for kind, env in (("disk", local), ("bucket", remote)):  # side by side, alternating
                    run = await run_task(client, env.environment_id, camera_frames)
                    assert run.state == "completed", (kind, run)
                    (disk if kind == "disk" else s3).append(run.fps)
                    if kind == "bucket":
                        exports = settings.media_root / "tasks" / run.task_id / "exports"
                        waits.append(json.loads((exports / TRACKING_EXPORT).read_text())["download_wait_s"])
                    print(f"round {k + 1} {kind}: {run.fps:.1f} camera frames/s", flush=True)
    return disk, s3, waits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--link-mbit", type=float, default=DEFAULT_LINK_MBIT, help="the S3 link's bandwidth")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spoton-recordings-") as work:
        result = asyncio.run(measure(args.rounds, args.link_mbit, Path(work)))
    result["seconds"] = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recordings.json").write_text(json.dumps(result, indent=2) + "\n")
    verdict = "PASS" if result["pass"] else "MISS"
    print(
        f"bucket over a {args.link_mbit:g} Mbit/s link / disk processing rate: {result['bucket_over_disk']:.3f} "
        f"(target >= {TARGET_RATIO}) {verdict}; "
        f"download waits per batch: {result['download_wait_s']}"
    )


if __name__ == "__main__":
    main()
