"""PostgreSQL access (asyncpg): the connection pool every store queries through.

The queries live in one Store class per concern, each over a :class:`Database`:
``environment_store.py`` (environments and cameras), ``task_store.py`` (task records and
track points), ``catalog_store.py``, ``job_store.py``, ``audit_store.py`` and the others.

Every connection comes through :class:`GuardedPool`: a PostgreSQL that is down, restarting
or frozen is found within ``timeout_s`` (SPOTON_POSTGRES_TIMEOUT_S) on taking a connection,
and any connection failure, then or mid-query, is raised as :class:`Unavailable` naming
PostgreSQL, so an RPC answers UNAVAILABLE at once instead of INTERNAL or a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator

import asyncpg

from spoton_inference.domain.errors import Unavailable
from spoton_inference.services.secrets import SecretBox
from spoton_inference.services.task_ports import EnvironmentBusy
from spoton_inference.storage.camera_secrets import seal_stored_secrets
from spoton_inference.storage.migrate import migrate
from spoton_inference.storage.task_store import TRACK_POINT_COLUMNS

# Re-exported: what callers imported from here before the stores moved out.
__all__ = ["TRACK_POINT_COLUMNS", "Database", "EnvironmentBusy", "GuardedPool", "describe_dsn"]


# A PostgreSQL that is down, restarting, shutting down or cut off, as asyncpg reports it;
# not an error of the query itself.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
# A connection that cannot run a query at all (asyncpg: "cannot switch to state 12; another
# operation (2) is in progress", "connection is closed"), as those of a killed server may be.
BROKEN_CONNECTION: tuple[type[BaseException], ...] = (asyncpg.InterfaceError, asyncpg.InternalClientError)
DEFAULT_TIMEOUT_S = 1.0
# Backstop for any one statement (COPY of a batch, maintenance); a frozen server is found
# sooner, on taking a connection.
COMMAND_TIMEOUT_S = 120.0


class GuardedPool:
    """An asyncpg pool whose ``acquire()`` checks the server within ``timeout_s`` and raises
    :class:`Unavailable` for any connection failure."""

    def __init__(self, pool: asyncpg.Pool, where: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.raw = pool
        self.where = where
        self.timeout_s = timeout_s

    async def close(self) -> None:
        await self.raw.close()

    def get_size(self) -> int:
        return self.raw.get_size()

    @contextlib.asynccontextmanager
    async def acquire(self, *, check_s: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A connection known to answer; ``check_s`` overrides ``timeout_s`` for the check."""
        bound = self.timeout_s if check_s is None else check_s
        for attempt in range(2):
            try:
                async with asyncio.timeout(bound):
                    conn = await self.raw.acquire()
            except CONNECTION_ERRORS as exc:
                raise self._unavailable(exc) from exc
            try:
                # A pooled connection to a frozen server would hang its first query: ask first.
                async with asyncio.timeout(bound):
                    await conn.fetchval("SELECT 1")
                break
            except CONNECTION_ERRORS as exc:
                _discard(conn)  # not close(): a frozen server would never answer the goodbye
                await self.raw.release(conn)
                raise self._unavailable(exc) from exc
            except BROKEN_CONNECTION as exc:
                # Left mid-operation when its server died under it: unusable. Another may do.
                _discard(conn)
                await self.raw.release(conn)
                if attempt:
                    raise self._unavailable(exc) from exc
            except BaseException:
                await self.raw.release(conn)
                raise
        try:
            try:
                yield conn
            except CONNECTION_ERRORS as exc:
                raise self._unavailable(exc) from exc
            except BROKEN_CONNECTION as exc:  # its server died mid-query: never reuse it
                _discard(conn)
                raise self._unavailable(exc) from exc
        finally:
            await self.raw.release(conn)

    def _unavailable(self, exc: BaseException) -> Unavailable:
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, TimeoutError):
            what = f"no answer within {self.timeout_s:g} s (SPOTON_POSTGRES_TIMEOUT_S)"
        return Unavailable(f"PostgreSQL at {self.where} is unavailable ({what}); retry shortly")


def _discard(conn: asyncpg.Connection) -> None:
    """Terminate a pooled connection, unless the pool already let go of it: asyncpg releases
    (and detaches) one whose server closed it, and terminate() on that raises InterfaceError."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


def describe_dsn(dsn: str) -> str:
    """host:port/database of a DSN, without credentials."""
    url = urllib.parse.urlsplit(dsn)
    return f"{url.hostname}:{url.port or 5432}{url.path}"


class Database:
    """The connection pool (and the box that seals camera passwords) the stores share."""

    def __init__(self, pool: GuardedPool | asyncpg.Pool, secrets: SecretBox | None = None) -> None:
        self.pool = pool if isinstance(pool, GuardedPool) else GuardedPool(pool, "PostgreSQL")
        # Seals camera passwords at rest. The service passes its configured box; without one
        # (tools, tests) a key of this process alone is used: what it seals, only it can open.
        self.secrets = secrets or SecretBox.ephemeral()

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        secrets: SecretBox | None = None,
    ) -> Database:
        """A pool on ``dsn`` with the schema migrated; with ``secrets``, stored camera passwords
        are sealed (plain-text ones from before 0012) or re-encrypted under its first key."""
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, command_timeout=COMMAND_TIMEOUT_S)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                if secrets is not None:
                    await seal_stored_secrets(conn, secrets)
        except BaseException:
            await pool.close()
            raise
        return cls(GuardedPool(pool, describe_dsn(dsn), timeout_s), secrets)

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self) -> None:
        async with self.pool.acquire(check_s=2) as conn:
            await conn.fetchval("SELECT 1")
