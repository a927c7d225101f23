"""Regression tests, over the real stack, for issue 16's attacks on secrets and sources: the
stolen camera password, the floor-plan file, the port scan; and camera passwords at rest
(a plain-text row migrated, the secret key rotated)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import shutil
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import grpc
import httpx
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from support.auth import authed_channel

from spoton.v1 import catalog_pb2, catalog_pb2_grpc
from spoton_inference.domain.camera_source import CameraSource, SourceInput, SourceKind
from spoton_inference.services.catalog import CameraPatch
from spoton_inference.services.secrets import SecretBox
from spoton_inference.storage.environment_store import EnvironmentStore

pytestmark = pytest.mark.timeout(300)
PASSWORD = "rtsp-pa55-never-leaves"
HTTP, RTSP = catalog_pb2.CAMERA_SOURCE_KIND_HTTP, catalog_pb2.CAMERA_SOURCE_KIND_RTSP


class Listener:
    """A TCP server on loopback that records every byte sent to it and asks for Basic auth."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Listener:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            async with asyncio.timeout(5):
                while chunk := await reader.read(4096):
                    self.received += chunk
                    if b"\r\n\r\n" in chunk:
                        writer.write(
                            b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="cam"\r\n'
                            b"Content-Length: 0\r\n\r\n"
                        )
                        await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


def _leaks(data: bytes) -> bool:
    basic = base64.b64encode(f"admin:{PASSWORD}".encode())
    return PASSWORD.encode() in data or basic in data


@pytest_asyncio.fixture(scope="module")
async def catalog(live_service) -> AsyncIterator[catalog_pb2_grpc.CatalogServiceStub]:
    async with authed_channel(live_service.target, live_service.api_key) as channel:
        yield catalog_pb2_grpc.CatalogServiceStub(channel)


async def _register(live_service, catalog, environment_id: str) -> None:
    path = live_service.make_environment(environment_id)
    await catalog.RegisterEnvironmentFromDirectory(catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=str(path)))


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details()


# -- the stolen password ---------------------------------------------------------------------


async def test_a_moved_source_does_not_take_the_stored_password_to_the_new_host(live_service, catalog):
    await _register(live_service, catalog, "stolen-pw")
    source = catalog_pb2.CameraSource(kind=RTSP, url="rtsp://10.20.30.40:554/live", username="admin", password=PASSWORD)
    stored = await catalog.UpdateCamera(
        catalog_pb2.UpdateCameraRequest(environment_id="stolen-pw", camera_id="c1", source=source)
    )
    assert stored.source.password_set
    async with Listener() as listener:
        # The attack: the URL moved to the attacker's host, the password left out.
        moved = catalog_pb2.CameraSource(kind=HTTP, url=f"http://127.0.0.1:{listener.port}/x", username="admin")
        patched = await catalog.UpdateCamera(
            catalog_pb2.UpdateCameraRequest(environment_id="stolen-pw", camera_id="c1", source=moved)
        )
        assert not patched.source.password_set
        result = await catalog.TestCameraConnection(
            catalog_pb2.TestCameraConnectionRequest(environment_id="stolen-pw", camera_id="c1")
        )
    assert not result.ok
    assert listener.connections >= 1 and b"GET /x" in listener.received  # the test did reach it...
    assert not _leaks(bytes(listener.received))  # ...without the password
    assert live_service.app.catalog.camera("stolen-pw", "c1").source.password == ""


async def test_the_stolen_password_attack_through_the_rest_facade(live_service, catalog, serve_facade):
    """The issue's own steps: PATCH the URL to a listener without the password, then test-connection."""
    from spoton_facade.settings import FacadeSettings

    await _register(live_service, catalog, "stolen-rest")
    source = catalog_pb2.CameraSource(kind=RTSP, url="rtsp://10.20.30.44/live", username="admin", password=PASSWORD)
    await catalog.UpdateCamera(
        catalog_pb2.UpdateCameraRequest(environment_id="stolen-rest", camera_id="c1", source=source)
    )
    settings = FacadeSettings(inference_target=live_service.target, media_root=live_service.settings.media_root)
    headers = {"Authorization": f"Bearer {live_service.api_key}"}
    camera = "/api/v1/environments/stolen-rest/cameras/c1"
    async with (
        Listener() as listener,
        serve_facade(settings) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http,
    ):
        moved = {"source": {"kind": "http", "url": f"http://127.0.0.1:{listener.port}/x", "username": "admin"}}
        patched = await http.patch(camera, json=moved)
        assert patched.status_code == 200, patched.text
        assert patched.json()["source"]["password_set"] is False
        tested = await http.post(f"{camera}/test-connection")
        assert tested.status_code == 200, tested.text
        # The port-scan step through REST too: the service's PostgreSQL port is refused.
        pg_port = urlsplit(live_service.settings.postgres_dsn).port
        scan = {"source": {"kind": "http", "url": f"http://127.0.0.1:{pg_port}/", "username": "admin"}}
        refused = await http.patch(camera, json=scan)
        assert refused.status_code == 400 and "PostgreSQL" in refused.text
    assert b"GET /x" in listener.received and not _leaks(bytes(listener.received))


async def test_query_string_credentials_never_come_back(live_service, catalog):
    await _register(live_service, catalog, "query-pw")
    url = f"http://10.20.30.41/snap.cgi?user=admin&pwd={PASSWORD}"
    source = catalog_pb2.CameraSource(kind=HTTP, url=url)
    camera = await catalog.UpdateCamera(
        catalog_pb2.UpdateCameraRequest(environment_id="query-pw", camera_id="c1", source=source)
    )
    assert camera.source.password_set
    for shown in (
        camera,
        await catalog.GetCamera(catalog_pb2.GetCameraRequest(environment_id="query-pw", camera_id="c1")),
    ):
        assert PASSWORD not in str(shown) and "pwd=****" in shown.source.url
    async with live_service.app.db.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM cameras WHERE environment_id = 'query-pw' AND camera_id = 'c1'")
    assert PASSWORD not in json.dumps({k: str(v) for k, v in dict(row).items()})


# -- the floor-plan file ----------------------------------------------------------------------


async def test_the_floor_plan_cannot_name_a_server_file(live_service, catalog, tmp_path):
    directory = shutil.copytree(live_service.make_environment("floor-attack"), tmp_path / "floor-attack")
    doc = json.loads((directory / "environment.json").read_text())
    doc["map"] = {"image": "/etc/passwd", "metres_per_pixel": 0.01}
    (directory / "environment.json").write_text(json.dumps(doc))
    code, details = await _code(
        catalog.RegisterEnvironmentFromDirectory(
            catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=str(directory))
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "map.image" in details and "root:" not in details
    media = live_service.settings.media_root / "environments" / "floor-attack"
    assert not media.exists()
    code, _ = await _code(catalog.GetEnvironment(catalog_pb2.GetEnvironmentRequest(environment_id="floor-attack")))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_a_deleted_environment_floor_plan_is_served_no_more(live_service, catalog, tmp_path):
    directory = shutil.copytree(live_service.make_environment("floor-ok"), tmp_path / "floor-ok")
    (directory / "plan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    doc = json.loads((directory / "environment.json").read_text())
    doc["map"] = {"image": "plan.png", "metres_per_pixel": 0.01}
    (directory / "environment.json").write_text(json.dumps(doc))
    env = (
        await catalog.RegisterEnvironmentFromDirectory(
            catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=str(directory))
        )
    ).environment
    served = live_service.settings.media_root / "environments" / "floor-ok" / "floor_map.png"
    assert env.map.image_url and served.is_file()
    await catalog.DeleteEnvironment(catalog_pb2.DeleteEnvironmentRequest(environment_id="floor-ok"))
    assert not served.exists()


async def test_registration_does_not_tell_missing_directories_from_others(catalog, tmp_path):
    (tmp_path / "empty").mkdir()
    answers = set()
    for path in (tmp_path / "empty", tmp_path / "missing", "/root/.ssh", "/etc"):
        code, details = await _code(
            catalog.RegisterEnvironmentFromDirectory(
                catalog_pb2.RegisterEnvironmentFromDirectoryRequest(path=str(path))
            )
        )
        answers.add((code, details.replace(repr(str(path)), "PATH")))
    assert len(answers) == 1, answers


# -- the port scan --------------------------------------------------------------------------


async def test_the_service_own_ports_are_refused_as_sources(live_service, catalog):
    """Even with 127.0.0.1 allowed (the test cameras'), the service's ports stay out of reach."""
    s = live_service.settings
    pg_port, redis_port = urlsplit(s.postgres_dsn).port, urlsplit(s.redis_url).port
    for port in (pg_port, redis_port, s.grpc_port):
        for url in (f"http://127.0.0.1:{port}/", f"rtsp://localhost:{port}/x"):
            code, details = await _code(
                catalog.TestCameraConnection(catalog_pb2.TestCameraConnectionRequest(source_url=url))
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT and "own ports" in details, (url, details)
    await _register(live_service, catalog, "scan-own")
    source = catalog_pb2.CameraSource(kind=HTTP, url=f"http://127.0.0.1:{pg_port}/")
    code, details = await _code(
        catalog.UpdateCamera(catalog_pb2.UpdateCameraRequest(environment_id="scan-own", camera_id="c1", source=source))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "PostgreSQL" in details


async def test_with_the_default_setting_loopback_sources_are_refused_and_never_called(live_service, service_settings):
    from spoton_inference.app import InferenceApp
    from spoton_inference.grpc_server import build_server

    settings = await service_settings("spoton_attacks_default", source_allowed_hosts=(), camera_health_interval_s=0)
    app = await InferenceApp.create(settings)
    server, _ = build_server(app)
    await server.start()
    try:
        async with Listener() as listener, authed_channel(f"{settings.grpc_host}:{settings.grpc_port}") as channel:
            catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
            for url in (f"http://127.0.0.1:{listener.port}/x", f"rtsp://localhost:{listener.port}/x"):
                code, details = await _code(
                    catalog.TestCameraConnection(catalog_pb2.TestCameraConnectionRequest(source_url=url))
                )
                assert code == grpc.StatusCode.INVALID_ARGUMENT and "SPOTON_SOURCE_ALLOWED_HOSTS" in details
            env = await app.catalog.register_directory(str(live_service.make_environment("scan-default")))
            legacy = CameraSource(SourceKind.HTTP, f"http://127.0.0.1:{listener.port}/x")
            source = catalog_pb2.CameraSource(kind=HTTP, url=legacy.url)
            code, _ = await _code(
                catalog.UpdateCamera(
                    catalog_pb2.UpdateCameraRequest(environment_id=env.environment_id, camera_id="c1", source=source)
                )
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            # A camera stored before the policy existed (written past the catalogue): the health
            # checker reports it refused and never calls it.
            moved = dataclasses.replace(env.cameras[0], source=legacy)
            await EnvironmentStore(app.db).upsert_environment(
                dataclasses.replace(env, cameras=(moved, *env.cameras[1:]))
            )
            await app.catalog.reload()
            check = await app.camera_health.check(env.environment_id, app.catalog.camera(env.environment_id, "c1"))
            assert check.status == "offline" and "SPOTON_SOURCE_ALLOWED_HOSTS" in check.error
        assert listener.connections == 0
    finally:
        await server.stop(grace=1.0)
        await app.close()


# -- passwords at rest ----------------------------------------------------------------------


async def test_a_plain_text_row_is_migrated_and_the_key_rotated_over_restarts(live_service, service_settings):
    from spoton_inference.app import InferenceApp

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = await service_settings("spoton_attacks_keys", secret_keys=(old_key,), camera_health_interval_s=0)
    app = await InferenceApp.create(settings)
    try:
        env = await app.catalog.register_directory(str(live_service.make_environment("keys")))
        patch = CameraPatch(source=SourceInput(SourceKind.RTSP, "rtsp://10.20.30.42/live", "admin", PASSWORD))
        await app.catalog.update_camera(env.environment_id, "c1", patch)
    finally:
        await app.close()
    conn = await asyncpg.connect(settings.postgres_dsn)
    try:
        # c2 as a version before 0012 left it: its password in plain text.
        await conn.execute(
            """UPDATE cameras SET source_kind = 'rtsp', source_url = 'rtsp://10.20.30.43/live',
                   source_username = 'admin', source_password = $1 WHERE camera_id = 'c2'""",
            PASSWORD,
        )
        # Rotation: the new key first, the old one still after it.
        rotated = dataclasses.replace(settings, secret_keys=(new_key, old_key))
        app = await InferenceApp.create(rotated)
        try:
            cameras = app.catalog.get(env.environment_id).cameras
            assert [c.source.password for c in cameras] == [PASSWORD, PASSWORD]
        finally:
            await app.close()
        rows = await conn.fetch("SELECT source_password, source_secret FROM cameras ORDER BY camera_id")
    finally:
        await conn.close()
    assert [r["source_password"] for r in rows] == ["", ""]
    assert all(SecretBox.from_keys([new_key]).is_current(r["source_secret"]) for r in rows)
    assert not any(PASSWORD in r["source_secret"] for r in rows)
    # The old key dropped: everything still opens.
    app = await InferenceApp.create(dataclasses.replace(settings, secret_keys=(new_key,)))
    try:
        assert all(c.source.password == PASSWORD for c in app.catalog.get(env.environment_id).cameras)
    finally:
        await app.close()


# -- the embedded stack's own passwords ---------------------------------------------------------


async def test_the_embedded_postgres_and_redis_want_their_generated_passwords(live_service):
    s = live_service.settings
    pg, rd = urlsplit(s.postgres_dsn), urlsplit(s.redis_url)
    assert pg.password and rd.password
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{pg.port}/spoton")
    reader, writer = await asyncio.open_connection("127.0.0.1", rd.port)
    writer.write(b"PING\r\n")
    assert (await reader.readline()).startswith(b"-NOAUTH")
    writer.close()
    # Neither password shows in what the service tells about itself.
    report = repr(await live_service.app.health())
    assert pg.password not in report and rd.password not in report
