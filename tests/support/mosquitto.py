"""A real MQTT broker for tests: Debian's mosquitto (``make mosquitto`` installs it) on a free
loopback port, with a generated config, authentication on and a password file made by
``mosquitto_passwd``, as tests/support/rtsp_server.py gives the tests a real RTSP server.

A system broker the package may have started on 1883 does not matter: each broker here has a
port, a config and a password file of its own. A test module takes the fixture by importing it:

    from support.mosquitto import mosquitto_fixture  # noqa: F401 (the ``mosquitto`` fixture)

    async def test_x(mosquitto: Mosquitto) -> None: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from spoton_inference.embedded.ports import LOOPBACK, pick_free_ports

MOSQUITTO = Path("/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = Path("/usr/bin/mosquitto_passwd")
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
POLL_S = 0.05
USER = "spoton"


class Mosquitto:
    """One broker on ``127.0.0.1:port`` that takes ``user``/``password`` (no anonymous clients);
    a test can stop and start it again on the same port (``restart``), as a broker going away."""

    def __init__(self, user: str = USER, password: str | None = None) -> None:
        if not MOSQUITTO.exists() or not MOSQUITTO_PASSWD.exists():
            raise RuntimeError("Debian's mosquitto is not installed: run `make mosquitto`")
        self.user = user
        self.password = password or secrets.token_urlsafe(16)
        self.port = pick_free_ports(1)[0]
        self.host = LOOPBACK
        self._dir = Path(tempfile.mkdtemp(prefix="spoton-mosquitto-"))
        self._proc: asyncio.subprocess.Process | None = None
        self.log = self._dir / "mosquitto.log"
        passwords = self._dir / "passwords"
        subprocess.run(
            [str(MOSQUITTO_PASSWD), "-b", "-c", str(passwords), user, self.password], check=True, capture_output=True
        )
        passwords.chmod(0o600)
        self.config = self._dir / "mosquitto.conf"
        self.config.write_text(
            "\n".join(
                [
                    f"listener {self.port} {LOOPBACK}",
                    "allow_anonymous false",
                    f"password_file {passwords}",
                    "persistence false",
                    # Run as whoever runs the tests: as root, mosquitto would otherwise switch to the
                    # user "mosquitto", which cannot read this private directory.
                    f"user {getpass.getuser()}",
                    f"log_dest file {self.log}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "",
                ]
            )
        )

    @property
    def url(self) -> str:
        """The sink URL: ``mqtt://user@127.0.0.1:port`` (the password is the sink's secret)."""
        return f"mqtt://{self.user}@{self.host}:{self.port}"

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            str(MOSQUITTO), "-c", str(self.config), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        async with asyncio.timeout(START_TIMEOUT_S):
            while not await self._accepting():
                if self._proc.returncode is not None:
                    stderr = await self._proc.stderr.read() if self._proc.stderr else b""
                    raise RuntimeError(f"mosquitto exited at start: {stderr.decode()}{self._log_text()}")
                await asyncio.sleep(POLL_S)

    async def stop(self) -> None:
        """Stop at once (SIGKILL): clients see their connection drop, as on a broker crash."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()  # a paused (SIGSTOPped) process dies of SIGKILL too
            await asyncio.wait_for(self._proc.wait(), STOP_TIMEOUT_S)
        self._proc = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered, as on a
        hung broker or a silently broken network path."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def cleanup(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    async def _accepting(self) -> bool:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(self.host, self.port)
            writer.close()
            await writer.wait_closed()
            return True
        return False

    def _log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest_asyncio.fixture(name="mosquitto")
async def mosquitto_fixture() -> AsyncIterator[Mosquitto]:
    """A started :class:`Mosquitto`, stopped and removed after the test."""
    broker = Mosquitto()
    try:
        await broker.start()
        yield broker
    finally:
        await broker.stop()
        broker.cleanup()
