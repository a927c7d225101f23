"""Peak disk used while N job uploads stream in at once through the facade (REST).

    python bench/upload_disk.py --measure-dir /mnt/uploads --mib 200 --uploads 4

Starts the embedded stack in a scratch directory, then an inference service whose data
directory is under ``--measure-dir``, and the facade with ``TMPDIR`` there too (where it used
to spool uploads), posts the uploads at once and samples the filesystem's used bytes every few
milliseconds. ``--measure-dir`` should be a filesystem of its own (a tmpfs), so that nothing
else writes there; the peak includes files already unlinked but still open. Each upload is
the test video padded to ``--mib`` MiB (FFmpeg ignores the padding). Run it with another
checkout's packages first on PYTHONPATH to measure that one.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvicorn

MIB = 1024 * 1024
SAMPLE_S = 0.002


class PeakSampler:
    """The filesystem's used bytes, sampled in a thread; ``peak`` above the starting level."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._base = shutil.disk_usage(path).used
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, shutil.disk_usage(self._path).used - self._base)
            time.sleep(SAMPLE_S)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def main(args: argparse.Namespace) -> None:
    from spoton_facade import create_app
    from spoton_facade.settings import FacadeSettings
    from spoton_inference.app import InferenceApp
    from spoton_inference.embedded.ports import pick_free_ports
    from spoton_inference.embedded.stack import EmbeddedStack
    from spoton_inference.grpc_server import build_server
    from spoton_inference.scenes.config import demo_config
    from spoton_inference.scenes.generate import generate
    from spoton_inference.settings import Settings

    scratch = Path(tempfile.mkdtemp(prefix="spoton-upload-disk-"))
    scratch.chmod(0o755)  # PostgreSQL runs as another user under root
    config = dataclasses.replace(demo_config(seed=7), n_people=2, frames_per_batch=30, n_batches=1)
    site = generate(dataclasses.replace(config, cameras=(config.cameras[0],)), scratch / "site")
    video = next((site / "cameras").rglob("*.mp4"))
    padded = scratch / "upload.mp4"
    with padded.open("wb") as out:
        out.write(video.read_bytes())
        out.truncate(args.mib * MIB)
    measured = Path(args.measure_dir)
    (measured / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(measured / "tmp")
    tempfile.tempdir = None  # read TMPDIR again

    async with EmbeddedStack(Settings(data_dir=scratch / "stack")) as stack:
        conn = await asyncpg.connect(stack.settings.postgres_dsn)
        await conn.execute('CREATE DATABASE "upload_disk"')
        await conn.close()
        overrides = {"max_concurrent_uploads": args.cap or args.uploads}
        known = {f.name for f in dataclasses.fields(Settings)}
        settings = dataclasses.replace(
            stack.settings,
            data_dir=measured / "service",
            media_root=measured / "service" / "media",
            postgres_dsn=urlunsplit(urlsplit(stack.settings.postgres_dsn)._replace(path="/upload_disk")),
            grpc_port=pick_free_ports(1)[0],
            **{k: v for k, v in overrides.items() if k in known},
        )
        app = await InferenceApp.create(settings)
        server, _ = build_server(app)
        await server.start()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        facade = FacadeSettings(inference_target=f"127.0.0.1:{settings.grpc_port}", media_root=settings.media_root)
        web = uvicorn.Server(uvicorn.Config(create_app(facade), host="127.0.0.1", port=port, log_level="warning"))
        serving = asyncio.create_task(web.serve())
        while not web.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
            await asyncio.sleep(0.01)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:

                async def upload(i: int) -> int:
                    with padded.open("rb") as f:
                        response = await client.post("/api/v1/jobs", files={"file": (f"{i}.mp4", f, "video/mp4")})
                    return response.status_code

                with PeakSampler(measured) as sampler:
                    started = time.monotonic()
                    statuses = await asyncio.gather(*(upload(i) for i in range(args.uploads)))
                    elapsed = time.monotonic() - started
            accepted = statuses.count(201)
            print(
                f"{args.uploads} uploads of {args.mib} MiB at once: statuses {statuses}; "
                f"peak disk {sampler.peak / MIB:.0f} MiB = {sampler.peak / (args.mib * MIB):.2f} x one upload "
                f"({sampler.peak / (args.mib * MIB * max(accepted, 1)):.2f} x per accepted upload); {elapsed:.1f} s"
            )
        finally:
            web.should_exit = True
            await serving
            await server.stop(grace=1.0)
            await app.close()
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure-dir", required=True, help="a directory on a filesystem of its own (tmpfs)")
    parser.add_argument("--mib", type=int, default=200, help="size of each upload")
    parser.add_argument("--uploads", type=int, default=4, help="uploads at once")
    parser.add_argument("--cap", type=int, default=0, help="SPOTON_MAX_CONCURRENT_UPLOADS (default: --uploads)")
    asyncio.run(main(parser.parse_args()))
