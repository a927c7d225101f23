"""The inference service's imports run one way: inward, towards the domain (issue 20).

The layers and the edges allowed between them are listed once, in tests/support/import_graph.py
(:data:`LAYER_OF_PREFIX`, :data:`ALLOWED_EDGES`). No import runs the wrong way: the contract
fails on a new one unless it is listed in :data:`EXCEPTIONS` with its reason, and fails on a
listed exception that no longer occurs, so the list only shrinks.

Imports under ``if TYPE_CHECKING:`` count like any other: an annotation naming a concrete store
or the composition root couples the module to it just the same, and a Protocol removes it.

Print the figures (layer sizes, back-edges per layer pair) with
``cd tests && ../.venv/bin/python -m support.import_graph [--edges]``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from support.import_graph import (
    ALLOWED_EDGES,
    DOMAIN,
    DOMAIN_LIBRARIES,
    LAYER_OF_PREFIX,
    LAYERS,
    PACKAGE,
    Edge,
    back_edges,
    figures,
    import_graph,
    layer_of,
    libraries_of,
    module_files,
)

# Wrong-way imports allowed for now, (importer, imported) without the "spoton_inference." prefix
# -> the reason and the step that removes it. Issue 20 emptied it; a new entry needs a reason a
# reviewer accepts, and is deleted with its import (test_every_exception_still_occurs).
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _package(root: Path, files: dict[str, str]) -> Path:
    """Write a throwaway ``spoton_inference`` package under ``root`` from {relative path: source}."""
    package = root / PACKAGE
    for name, source in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return package


def test_scanner_finds_every_form_of_import(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "settings.py": "",
            "storage/__init__.py": "",
            "storage/postgres.py": "",
            "storage/gallery.py": "",
            "services/__init__.py": "",
            "services/jobs.py": """
                from typing import TYPE_CHECKING
                import importlib
                from . import rules
                from ..storage import postgres
                from spoton_inference.settings import Settings
                if TYPE_CHECKING:
                    import spoton_inference.pipeline.runner
                def lazy():
                    return importlib.import_module("spoton_inference.storage.gallery")
            """,
            "services/rules.py": "",
            "pipeline/__init__.py": "",
            "pipeline/runner.py": "from spoton_inference.services.rules import Rule\n",
        },
    )
    assert import_graph(package) == {
        Edge("services.jobs", "services.rules", type_only=False),
        Edge("services.jobs", "storage.postgres", type_only=False),
        Edge("services.jobs", "settings", type_only=False),
        Edge("services.jobs", "pipeline.runner", type_only=True),
        Edge("services.jobs", "storage.gallery", type_only=False),
        Edge("pipeline.runner", "services.rules", type_only=False),
    }
    assert [(edge.importer, edge.imported) for edge in back_edges(package)] == [
        ("pipeline.runner", "services.rules"),
        ("services.jobs", "pipeline.runner"),
        ("services.jobs", "settings"),
        ("services.jobs", "storage.gallery"),
        ("services.jobs", "storage.postgres"),
    ]


def test_an_import_outside_type_checking_makes_the_edge_a_real_one(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "app.py": "",
            "grpc_api/__init__.py": "",
            "grpc_api/jobs.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from spoton_inference.app import InferenceApp
                def build():
                    from spoton_inference.app import InferenceApp
            """,
        },
    )
    assert import_graph(package) == {Edge("grpc_api.jobs", "app", type_only=False)}


def test_libraries_of_skips_the_stdlib_and_the_package(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "domain/__init__.py": "",
            "domain/events.py": """
                import dataclasses
                import numpy as np
                from asyncpg import Connection
                from spoton_inference.domain import errors
            """,
        },
    )
    assert libraries_of("domain.events", package / "domain" / "events.py") == {"numpy", "asyncpg"}


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("spoton_inference", "root"),
        ("spoton_inference.app", "root"),
        ("services.tasks", "services"),
        ("domain.events", "domain"),
        ("tracking.refine.graph", "domain"),
        ("storage.postgres", "adapters"),
        ("grpc_api.tasks", "edges"),
    ],
)
def test_layer_of_uses_the_longest_prefix(module: str, layer: str) -> None:
    assert layer_of(module) == layer


def test_every_module_has_a_layer_and_every_table_entry_a_module() -> None:
    modules = module_files()
    assert len(modules) > 100, "the scan found too few modules: is PACKAGE_DIR right?"
    assert {name: layer_of(name) for name in modules}  # raises KeyError on a module with no layer
    stale = [prefix for prefix in LAYER_OF_PREFIX if prefix not in modules]
    assert stale == [], "LAYER_OF_PREFIX names modules that no longer exist"
    assert {layer for pair in ALLOWED_EDGES for layer in pair} <= set(LAYERS)
    assert set(LAYER_OF_PREFIX.values()) <= set(LAYERS)


def test_no_import_runs_against_the_layers() -> None:
    new = [
        f"{edge.importer} -> {edge.imported} ({' -> '.join(edge.layers)})"
        for edge in back_edges()
        if (edge.importer, edge.imported) not in EXCEPTIONS
    ]
    assert not new, "imports against ALLOWED_EDGES (tests/support/import_graph.py):\n" + "\n".join(new)


def test_every_exception_still_occurs() -> None:
    occurring = {(edge.importer, edge.imported) for edge in back_edges()}
    gone = [f"{importer} -> {imported}" for importer, imported in EXCEPTIONS if (importer, imported) not in occurring]
    assert not gone, "these back-edges are gone, delete them from EXCEPTIONS:\n" + "\n".join(gone)


def test_domain_imports_no_io_library() -> None:
    io = {
        name: sorted(libraries_of(name, path) - DOMAIN_LIBRARIES)
        for name, path in module_files().items()
        if layer_of(name) == DOMAIN and libraries_of(name, path) - DOMAIN_LIBRARIES
    }
    assert io == {}, "domain modules import libraries outside DOMAIN_LIBRARIES (tests/support/import_graph.py)"


def test_figures_cover_every_layer() -> None:
    report = figures()
    assert [line.split(" | ")[0].strip("| ") for line in report.splitlines()[2:9]] == [*LAYERS, "total"]
