"""The facade holds no business logic: nothing under facade/ may import the inference service."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

FACADE = Path(__file__).resolve().parents[2] / "facade"
FORBIDDEN = "spoton_inference"


def _imported_modules(path: Path) -> list[str]:
    modules: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            modules += [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
    return modules


def test_no_inference_imports() -> None:
    sources = sorted(FACADE.rglob("*.py"))
    assert sources, FACADE
    offenders = [
        f"{path.relative_to(FACADE)}: {module}"
        for path in sources
        for module in _imported_modules(path)
        if module.split(".")[0] == FORBIDDEN
    ]
    assert offenders == []


def test_no_inference_dependency() -> None:
    project = tomllib.loads((FACADE / "pyproject.toml").read_text())["project"]
    assert not [dep for dep in project["dependencies"] if dep.startswith("spoton-inference")]
