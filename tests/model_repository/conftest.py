"""Fixtures for the Triton python-backend models, exercised without a Triton server.

* ``test_images``: bus.jpg and zidane.jpg from the ``ultralytics`` wheel, fetched
  once into ``var/test-assets/`` with ``pip download`` (not committed).
* ``built_repository``: a copy of ``model_repository/`` with freshly built ONNX
  files, so the tests always check the current builders.
* ``load_model``: imports a ``model.py`` by path with a minimal stand-in for
  ``triton_python_backend_utils``, so ``TritonPythonModel`` runs in-process;
  ``make_args``/``make_request`` build what Triton would pass it, and
  ``read_config`` parses a ``config.pbtxt`` with Triton's own schema.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from spoton_inference.modelbuild.__main__ import main as build_main

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_REPOSITORY = REPO_ROOT / "model_repository"
ASSET_DIR = REPO_ROOT / "var" / "test-assets"
# Pinned by content, so a changed upstream photo fails loudly instead of
# silently breaking the TF parity numbers.
TEST_IMAGES = {
    "bus.jpg": "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63",
    "zidane.jpg": "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb",
}


def fetch_test_images(asset_dir: Path = ASSET_DIR) -> dict[str, Path]:
    """The test photos, downloaded from the ``ultralytics`` wheel on first use."""
    paths = {name: asset_dir / name for name in TEST_IMAGES}
    if not all(p.exists() for p in paths.values()):
        asset_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=asset_dir) as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "ultralytics",
                "-d",
                tmp,
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
            wheels = sorted(Path(tmp).glob("ultralytics-*.whl"))
            if proc.returncode != 0 or not wheels:
                pytest.fail(
                    f"could not fetch the test photos ({' '.join(cmd)} exited "
                    f"{proc.returncode}):\n{proc.stderr[-2000:]}"
                )
            with zipfile.ZipFile(wheels[0]) as wheel:
                for name, path in paths.items():
                    partial = Path(tmp) / name
                    partial.write_bytes(wheel.read(f"ultralytics/assets/{name}"))
                    os.replace(partial, path)
    for name, path in paths.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != TEST_IMAGES[name]:
            pytest.fail(f"{path} has sha256 {digest}, expected {TEST_IMAGES[name]}; delete it to fetch it again")
    return paths


@pytest.fixture(scope="session")
def test_images() -> dict[str, Path]:
    return fetch_test_images()


@pytest.fixture(scope="session")
def built_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``model_repository/`` copied, with both ONNX files built by the real CLI."""
    root = tmp_path_factory.mktemp("model_repository")
    shutil.copytree(MODEL_REPOSITORY, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.onnx", "__pycache__"))
    build_main(["--out", str(root)])
    return root


def read_config(path: Path) -> model_config_pb2.ModelConfig:
    """Parse a ``config.pbtxt`` with Triton's own ModelConfig schema."""
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def triton_args(model_dir: Path) -> dict[str, str]:
    """The ``args`` Triton passes to ``TritonPythonModel.initialize`` for ``model_dir``."""
    config = json_format.MessageToDict(read_config(model_dir / "config.pbtxt"), preserving_proto_field_name=True)
    return {
        "model_config": json.dumps(config),
        "model_repository": str(model_dir),
        "model_version": "1",
        "model_name": config["name"],
        "model_instance_kind": "CPU",
    }


class FakeTensor:
    """Stand-in for ``pb_utils.Tensor``."""

    def __init__(self, name: str, array: np.ndarray) -> None:
        self._name = name
        self._array = array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class FakeTritonError(Exception):
    """Stand-in for ``pb_utils.TritonError`` (same code names)."""

    INTERNAL = "INTERNAL"
    INVALID_ARG = "INVALID_ARG"

    def __init__(self, message: str, code: str = INTERNAL) -> None:
        super().__init__(message)
        self.code = code

    def message(self) -> str:
        return str(self)


class FakeResponse:
    """Stand-in for ``pb_utils.InferenceResponse``."""

    def __init__(self, output_tensors: list[FakeTensor], error: FakeTritonError | None = None) -> None:
        self.outputs = {t.name(): t.as_numpy() for t in output_tensors}
        self.error = error


def fake_request(**inputs: np.ndarray) -> dict[str, FakeTensor]:
    """A request as the fake ``get_input_tensor_by_name`` reads it."""
    return {name: FakeTensor(name, array) for name, array in inputs.items()}


def _fake_pb_utils() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    module.Tensor = FakeTensor  # type: ignore[attr-defined]
    module.TritonError = FakeTritonError  # type: ignore[attr-defined]
    module.InferenceResponse = FakeResponse  # type: ignore[attr-defined]
    module.get_input_tensor_by_name = lambda request, name: request.get(name)  # type: ignore[attr-defined]
    return module


@pytest.fixture
def load_model(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """Import ``model_repository/<name>/1/model.py`` as a fresh module."""
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _fake_pb_utils())

    def load(name: str) -> Any:
        module_name = f"spoton_test_model_{name}"
        spec = importlib.util.spec_from_file_location(module_name, MODEL_REPOSITORY / name / "1" / "model.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        # Registered before exec: dataclasses resolve string annotations via sys.modules.
        monkeypatch.setitem(sys.modules, module_name, module)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def make_args() -> Callable[[Path], dict[str, str]]:
    return triton_args


@pytest.fixture
def make_request() -> Callable[..., dict[str, FakeTensor]]:
    return fake_request


@pytest.fixture(name="read_config")
def read_config_fixture() -> Callable[[Path], model_config_pb2.ModelConfig]:
    return read_config
