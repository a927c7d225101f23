"""Fixtures for the embedded-stack tests: tiny Triton model repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

ADD_ONE_CONFIG = """\
backend: "python"
max_batch_size: 0
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
instance_group [ { count: 1 kind: KIND_CPU } ]
"""

ADD_ONE_MODEL = """\
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            out = pb_utils.Tensor("OUTPUT0", (x + 1).astype(np.float32))
            responses.append(pb_utils.InferenceResponse([out]))
        return responses
"""


BROKEN_MODEL = """\
class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("broken on purpose")

    def execute(self, requests):
        return []
"""


def _write_python_model(repository: Path, name: str, config: str, model_py: str) -> None:
    model_dir = repository / name
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "config.pbtxt").write_text(config)
    (model_dir / "1" / "model.py").write_text(model_py)


@pytest.fixture(scope="session")
def tiny_model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with one Python-backend model, ``add_one`` (FP32 in → in + 1)."""
    repository = tmp_path_factory.mktemp("model_repository")
    _write_python_model(repository, "add_one", ADD_ONE_CONFIG, ADD_ONE_MODEL)
    return repository


@pytest.fixture(scope="session")
def broken_model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository whose only model raises while loading."""
    repository = tmp_path_factory.mktemp("broken_model_repository")
    _write_python_model(repository, "broken", ADD_ONE_CONFIG, BROKEN_MODEL)
    return repository
