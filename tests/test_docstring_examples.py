"""The examples in docstrings run and print what they show: they are documentation a reader
copies, so a stale one is a bug."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "spoton_inference": REPO_ROOT / "inference" / "spoton_inference",
    "spoton_facade": REPO_ROOT / "facade" / "spoton_facade",
    "spoton_client": REPO_ROOT / "clients" / "spoton_client",
}


def _modules_with_examples() -> list[str]:
    """Dotted names of package modules, and paths of Triton model files, that hold ``>>>``."""
    found = []
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            if ">>>" in path.read_text():
                parts = path.relative_to(root).with_suffix("").parts
                found.append(".".join((package, *parts)).removesuffix(".__init__"))
    models = sorted((REPO_ROOT / "model_repository").glob("*/1/model.py"))
    found += [str(p.relative_to(REPO_ROOT)) for p in models if ">>>" in p.read_text()]
    return found


def _load(name: str) -> ModuleType:
    if not name.endswith(".py"):
        return importlib.import_module(name)
    # A Triton model file is not a package module: import it by path under a private name.
    module_name = "_doctest_" + name.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(module_name, REPO_ROOT / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while a class is built
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples(name: str) -> None:
    module = _load(name)
    results = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert results.attempted > 0, f"doctest found none of the examples in {name}"
    assert results.failed == 0, f"{results.failed} docstring example(s) of {name} failed (see the output)"
