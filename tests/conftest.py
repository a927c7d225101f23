"""Fixtures shared by every test package."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

# tests/support holds helpers the tests import as `support.<module>`.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from support.auth import ADMIN_API_KEY
from support.services import serving

# Loopback hosts camera sources may use in tests (SPOTON_SOURCE_ALLOWED_HOSTS): the RTSP test server's.
LOCAL_TEST_CAMERA_HOSTS = ("127.0.0.1",)


@pytest.fixture(scope="session")
def make_data_dir() -> Iterator[Callable[[str], Path]]:
    """Fresh data directories outside pytest's tmp tree.

    PostgreSQL runs as another user when tests run as root and must traverse the path to
    its data. pytest resets ``/tmp/pytest-of-<user>`` to mode 0700 whenever a session
    starts, which would cut off a server that is already running under it.
    """
    base = Path(tempfile.mkdtemp(prefix="spoton-embedded-tests-"))
    counter = itertools.count()

    def make(name: str) -> Path:
        path = base / f"{name}-{next(counter)}"
        path.mkdir()
        return path

    yield make
    shutil.rmtree(base, ignore_errors=True)


# -- an in-process inference service on real embedded parts ---------------------------------


@dataclasses.dataclass(frozen=True)
class LiveService:
    """The inference service in this process (so tests can read its counters) on embedded
    Triton, PostgreSQL and Redis, serving gRPC at ``target``."""

    app: Any
    settings: Any
    target: str
    # make_environment(environment_id) -> a registered-ready environment directory.
    make_environment: Callable[[str], Path]
    # The embedded Redis under it (an EmbeddedRedis), for tests that stop and start it again.
    redis: Any = None
    # Its admin API key (SPOTON_ADMIN_API_KEY): support.auth.authed_channel(target, api_key).
    api_key: str = ADMIN_API_KEY


def write_tiny_environment(directory: Path, environment_id: str, frames: int = 15) -> Path:
    """Two cameras, two short sub-videos each, no people: enough for task control and SSE."""
    import cv2
    import numpy as np

    cameras = []
    for k, cam in enumerate(("c1", "c2")):
        for batch in (1, 2):
            path = directory / "cameras" / cam / f"sub_video_{batch:02d}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
            for i in range(frames):
                writer.write(np.full((120, 160, 3), (40 * k + 3 * i) % 255, np.uint8))
            writer.release()
        square = [[0, 0], [160, 0], [160, 120], [0, 120]]
        homography = {"image_points": square, "map_points": [[x / 40, y / 40] for x, y in square]}
        cameras.append({"id": cam, "name": f"Camera {cam}", "fps": 10, "homography": homography})
    doc = {"id": environment_id, "name": environment_id, "map": {"metres_per_pixel": 0.01}, "cameras": cameras}
    (directory / "environment.json").write_text(json.dumps(doc))
    return directory


async def _until_serving(target: str, timeout_s: float = 30) -> None:
    """Wait for grpc.health.v1 to report the spoton services SERVING, as a client would."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from spoton_inference.grpc_api.server import SPOTON_SERVICES

    async with grpc.aio.insecure_channel(target) as channel, asyncio.timeout(timeout_s):
        stub = health_pb2_grpc.HealthStub(channel)
        for service in SPOTON_SERVICES:
            while True:
                with contextlib.suppress(grpc.aio.AioRpcError):  # NOT_FOUND until first published
                    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                await asyncio.sleep(0.1)


@pytest_asyncio.fixture(scope="session")
async def live_service(make_data_dir) -> AsyncIterator[LiveService]:
    from spoton_inference.app import InferenceApp, wait_for_triton
    from spoton_inference.embedded.stack import EmbeddedStack
    from spoton_inference.grpc_server import build_server, publish_health
    from spoton_inference.settings import Settings

    envs = make_data_dir("live-envs")
    settings = Settings(
        data_dir=make_data_dir("live-service"),
        admin_api_key=ADMIN_API_KEY,
        # Shared by every service the tests derive from this one, as replicas on one database
        # must share them: a replica cannot open passwords another one sealed.
        secret_keys=(Fernet.generate_key().decode(),),
        jwt_secret=secrets.token_urlsafe(32),
        # The local test cameras (RtspCamera) listen on loopback: allowed, as the embedded demo's are.
        source_allowed_hosts=LOCAL_TEST_CAMERA_HOSTS,
    )
    async with EmbeddedStack(settings) as stack:
        app = await InferenceApp.create(stack.settings)
        server, health = build_server(app)
        await server.start()
        # As serve.py does: grpc.health.v1 follows the detailed health, per service.
        publishing = asyncio.create_task(publish_health(app, health))
        try:
            await wait_for_triton(app.models, 300)
            await app.warm_up()
            await _until_serving(stack.endpoints.grpc_target)
            yield LiveService(
                app,
                stack.settings,
                stack.endpoints.grpc_target,
                lambda env_id: write_tiny_environment(envs / env_id, env_id),
                stack.redis,
            )
        finally:
            publishing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publishing
            await server.stop(grace=1.0)
            await app.close()


@pytest.fixture(scope="session")
def attach_source(live_service) -> Callable[..., Awaitable[None]]:
    """``await attach_source(environment_id, camera_id, url, username="", password="")``: give a
    camera registered on live_service an RTSP source, as an operator does (UpdateCamera)."""
    from spoton_inference.domain.camera_source import SourceInput, SourceKind
    from spoton_inference.services.catalog import CameraPatch

    async def attach(environment_id: str, camera_id: str, url: str, username: str = "", password: str = "") -> None:
        source = SourceInput(SourceKind.RTSP, url, username, password)
        await live_service.app.catalog.update_camera(environment_id, camera_id, CameraPatch(source=source))

    return attach


@pytest.fixture(scope="session")
def serve_facade() -> Callable[[Any], AbstractAsyncContextManager[str]]:
    """``async with serve_facade(facade_settings) as url``: the facade under a real uvicorn on
    loopback, in this event loop (which also serves the in-process gRPC service).

    Litestar's test client runs the app on a loop of its own, where calls to the in-process
    gRPC server could not be answered; a real server also makes client disconnects real.
    """
    import socket

    import uvicorn

    from spoton_facade import create_app

    @contextlib.asynccontextmanager
    async def serve(settings: Any) -> AsyncIterator[str]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await serving

    return serve


# -- jobs: another inference service on live_service's parts, with a database of its own -----


@pytest.fixture(scope="session")
def job_video(make_data_dir) -> Path:
    """A generated 3 s, 10 fps, 640x480 H.264 video of four people walking in a hall."""
    from spoton_inference.scenes.config import demo_config
    from spoton_inference.scenes.generate import generate

    demo = demo_config(seed=7)
    config = dataclasses.replace(demo, cameras=(demo.cameras[1],), n_people=4, frames_per_batch=30, n_batches=1)
    site = generate(config, make_data_dir("job-video") / "site")
    return site / "cameras" / demo.cameras[1].id / "sub_video_01.mp4"


@pytest.fixture(scope="session")
def service_settings(live_service, make_data_dir) -> Callable[..., Any]:
    """``await service_settings(name, **overrides)``: settings for another inference service
    on live_service's Triton, PostgreSQL and Redis, with a fresh database, Redis database,
    data directory and gRPC port of its own (so its job queue is its own)."""
    from urllib.parse import urlsplit, urlunsplit

    import asyncpg

    from spoton_inference.embedded.ports import pick_free_ports
    from spoton_inference.embedded.redis import DATABASES

    redis_dbs = itertools.count(1)

    async def make(name: str, **overrides: Any) -> Any:
        base = live_service.settings
        conn = await asyncpg.connect(base.postgres_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        data_dir = make_data_dir(name)
        redis_db = next(redis_dbs)
        assert redis_db < DATABASES, f"the embedded Redis has {DATABASES} databases: raise DATABASES"
        return dataclasses.replace(
            base,
            data_dir=data_dir,
            media_root=data_dir / "media",
            jobs_dir=overrides.pop("jobs_dir", data_dir / "jobs"),
            postgres_dsn=urlunsplit(urlsplit(base.postgres_dsn)._replace(path=f"/{name}")),
            redis_url=urlunsplit(urlsplit(base.redis_url)._replace(path=f"/{redis_db}")),
            grpc_port=pick_free_ports(1)[0],
            **overrides,
        )

    return make


@dataclasses.dataclass(frozen=True)
class JobsService:
    """An inference service (in this process) for the job tests: uploads up to 4 MiB, one job
    at a time; ``video`` is a real video to upload."""

    app: Any
    settings: Any
    target: str
    video: Path
    api_key: str = ADMIN_API_KEY


@pytest_asyncio.fixture(scope="session")
async def jobs_service(service_settings, job_video) -> AsyncIterator[JobsService]:
    settings = await service_settings("spoton_jobs", job_max_upload_bytes=4 * 1024 * 1024, job_concurrency=1)
    async with serving(settings) as app:
        yield JobsService(app, settings, f"{settings.grpc_host}:{settings.grpc_port}", job_video)


# -- a local RTSP camera (Debian's gst-rtsp-server; `make rtsp-server` installs it) ------------


class RtspCamera:
    """An H.264 stream at ``url`` served by tests/support/rtsp_server.py, which a test
    can stop and start again on the same port (to drop every client mid-stream)."""

    SCRIPT = Path(__file__).parent / "support" / "rtsp_server.py"

    def __init__(
        self,
        *,
        fps: int = 10,
        width: int = 320,
        height: int = 240,
        user: str = "",
        password: str = "",
        video: Path | None = None,
    ):
        """``video``: an H.264 MP4 to stream (once, in real time) instead of the generated pattern."""
        from spoton_inference.embedded.ports import pick_free_ports

        self.port = pick_free_ports(1)[0]
        self.fps, self.width, self.height, self.video = fps, width, height, video
        self.user, self.password = user, password
        self.url = f"rtsp://127.0.0.1:{self.port}/live"  # without credentials
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        args = ["--port", self.port, "--fps", self.fps, "--width", self.width, "--height", self.height]
        if self.user:
            args += ["--user", self.user, "--password", self.password]
        if self.video is not None:
            args += ["--video", self.video]
        self._proc = await asyncio.create_subprocess_exec(
            "/usr/bin/python3", str(self.SCRIPT), *map(str, args), stdout=asyncio.subprocess.PIPE
        )
        line = await asyncio.wait_for(self._proc.stdout.readline(), 30)  # type: ignore[union-attr]
        if line.strip() != b"ready":
            await self.stop()
            raise RuntimeError(f"RTSP server did not start (run `make rtsp-server`): {line!r}")

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()  # abrupt, as a camera losing power: clients see the connection drop
            await self._proc.wait()
        self._proc = None


@pytest_asyncio.fixture
async def rtsp_camera() -> AsyncIterator[Callable[..., Any]]:
    """``await rtsp_camera(**options)``: a started :class:`RtspCamera`, stopped after the test."""
    cameras: list[RtspCamera] = []

    async def start(**options: Any) -> RtspCamera:
        camera = RtspCamera(**options)
        cameras.append(camera)
        await camera.start()
        return camera

    yield start
    for camera in cameras:
        await camera.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """A SeaweedFS S3 server (support.s3_server.S3Server) shared by the session: create a bucket of
    your own with ``s3_server.create_bucket()``. A test that stops the server starts its own."""
    from support.s3_server import S3Server

    with S3Server() as server:
        yield server
