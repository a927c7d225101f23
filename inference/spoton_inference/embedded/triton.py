"""Triton Inference Server from the nvidia-pytriton wheel, as a supervised child.

The wheel ships a ``tritonserver`` binary, the Python backend and per-version Python
backend stubs, but not laid out the way Triton expects. Before each start we build, under
``<data_dir>/triton``:

* ``backends/python/``: the backend library and utilities plus the stub for this
  interpreter's Python version (Triton looks for the stub next to the backend);
* ``models/``: a runtime copy of the model repository whose configs gain the
  ``EXECUTION_ENV_PATH`` parameter pointing at this virtual environment, so the stub's
  interpreter can import numpy and friends. The committed configs stay machine independent.

NVML/DCGM and pinned-memory warnings in the log are expected on a machine without a GPU.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Protocol

from spoton_inference.embedded.ports import LOOPBACK, pick_free_ports
from spoton_inference.embedded.probes import http_ok
from spoton_inference.embedded.supervisor import ChildProcess, ChildSpec, ChildStatus

CONFIG_NAME = "config.pbtxt"
ENV_PATH_PARAMETER = "EXECUTION_ENV_PATH"


@dataclasses.dataclass(frozen=True, slots=True)
class TritonInstall:
    """Where the nvidia-pytriton wheel keeps Triton's pieces."""

    server: Path
    python_backend: Path
    stub: Path
    libs: Path

    @classmethod
    def locate(cls) -> TritonInstall:
        """Find the wheel without importing pytriton (its import is heavy and not needed)."""
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("nvidia-pytriton is not installed in this environment")
        package = Path(next(iter(spec.submodule_search_locations)))
        root = package / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        install = cls(
            server=root / "bin" / "tritonserver",
            python_backend=root / "backends" / "python",
            stub=root / "python_backend_stubs" / version / "triton_python_backend_stub",
            libs=package.parent / "nvidia_pytriton.libs",
        )
        for path in (install.server, install.python_backend, install.stub, install.libs):
            if not path.exists():
                raise FileNotFoundError(f"nvidia-pytriton wheel lacks {path}")
        return install

    def library_path(self) -> str:
        """LD_LIBRARY_PATH for tritonserver: the wheel's bundled libraries and libpython."""
        parts = [str(self.libs), str(sysconfig.get_config_var("LIBDIR"))]
        if inherited := os.environ.get("LD_LIBRARY_PATH"):
            parts.append(inherited)
        return os.pathsep.join(parts)


@dataclasses.dataclass(frozen=True, slots=True)
class TritonPorts:
    grpc: int
    http: int
    metrics: int

    @classmethod
    def pick(cls) -> TritonPorts:
        grpc, http, metrics = pick_free_ports(3)
        return cls(grpc=grpc, http=http, metrics=metrics)


def prepare_backends(install: TritonInstall, backends_dir: Path) -> None:
    """Lay out ``<backends_dir>/python``: the backend's files plus this Python's stub."""
    target = backends_dir / "python"
    target.mkdir(parents=True, exist_ok=True)
    sources = [path for path in install.python_backend.iterdir() if path.is_file()]
    for source in [*sources, install.stub]:
        # Copy then rename: a stale stub still executing the old file would make an
        # in-place overwrite fail with ETXTBSY.
        partial = target / f".{source.name}.partial"
        shutil.copy2(source, partial)
        partial.replace(target / source.name)


def prepare_model_repository(source: Path, target: Path, env_path: Path) -> list[str]:
    """Rebuild ``target`` from ``source`` and return the model names.

    Each model directory gets a copied config with ``EXECUTION_ENV_PATH`` appended (left
    alone if the committed config sets it itself) and symlinks to everything else
    (version directories, label files), so large weights are not copied.
    """
    if not source.is_dir():
        raise FileNotFoundError(f"model repository {source} does not exist")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    parameter = f'\nparameters: {{ key: "{ENV_PATH_PARAMETER}" value: {{ string_value: "{env_path}" }} }}\n'
    names: list[str] = []
    for model in sorted(source.iterdir()):
        if not model.is_dir() or model.name.startswith("."):
            continue
        model_target = target / model.name
        model_target.mkdir()
        for entry in model.iterdir():
            if entry.name == CONFIG_NAME:
                config = entry.read_text()
                if ENV_PATH_PARAMETER not in config:
                    config += parameter
                (model_target / CONFIG_NAME).write_text(config)
            else:
                (model_target / entry.name).symlink_to(entry.resolve())
        names.append(model.name)
    return names


class TritonSettings(Protocol):
    """What the server reads of the settings (the root's Settings has both)."""

    @property
    def data_dir(self) -> Path: ...  # the served models and backends in <data_dir>/triton
    @property
    def model_repository(self) -> Path: ...  # the built models it serves


class EmbeddedTriton:
    """``tritonserver`` on 127.0.0.1 with free gRPC, HTTP and metrics ports."""

    name = "triton"

    def __init__(
        self,
        settings: TritonSettings,
        *,
        ports: TritonPorts | None = None,
        exit_timeout_s: int = 1,
        ready_timeout_s: float = 180.0,
    ) -> None:
        self.settings = settings
        self.ports = ports or TritonPorts.pick()
        self.root = settings.data_dir.resolve() / "triton"
        self._install = TritonInstall.locate()
        self._models: list[str] = []
        argv = (
            str(self._install.server),
            f"--model-repository={self.root / 'models'}",
            f"--backend-directory={self.root / 'backends'}",
            f"--grpc-address={LOOPBACK}",
            f"--grpc-port={self.ports.grpc}",
            f"--http-address={LOOPBACK}",
            f"--http-port={self.ports.http}",
            f"--metrics-address={LOOPBACK}",
            f"--metrics-port={self.ports.metrics}",
            # Triton otherwise waits out 30 s for in-flight work after SIGTERM.
            f"--exit-timeout-secs={exit_timeout_s}",
            "--strict-readiness=true",
        )
        self._child = ChildProcess(
            ChildSpec(
                name=self.name,
                argv=argv,
                log_path=settings.data_dir / "logs" / "triton.log",
                ready=self._ready,
                env={"LD_LIBRARY_PATH": self._install.library_path()},
                pidfile=self.root / "tritonserver.pid",
                stop_timeout_s=exit_timeout_s + 4.0,
                ready_timeout_s=ready_timeout_s,
            )
        )

    @property
    def grpc_url(self) -> str:
        return f"{LOOPBACK}:{self.ports.grpc}"

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.http}"

    @property
    def models(self) -> list[str]:
        """The models of the runtime repository (known once started)."""
        return list(self._models)

    @property
    def pid(self) -> int | None:
        return self._child.pid

    def status(self) -> ChildStatus:
        return self._child.status()

    async def crashed(self) -> None:
        """Wait until the server, once ready, exits on its own."""
        await self._child.crashed()

    async def start(self) -> None:
        """Rebuild the backend and model directories, launch, wait for every model."""
        self._child.check_startable()
        prepare_backends(self._install, self.root / "backends")
        self._models = prepare_model_repository(self.settings.model_repository, self.root / "models", Path(sys.prefix))
        await self._child.start()

    async def stop(self) -> None:
        await self._child.stop()

    async def _ready(self) -> bool:
        if not await http_ok(f"{self.http_url}/v2/health/ready"):
            return False
        for model in self._models:
            if not await http_ok(f"{self.http_url}/v2/models/{model}/ready"):
                return False
        return True
