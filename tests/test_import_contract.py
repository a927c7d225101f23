"""The inference service's imports run one way: inward, towards the domain (issue 20).

The layers and the edges allowed between them are listed once, in tests/support/import_graph.py
(:data:`LAYER_OF_PREFIX`, :data:`ALLOWED_EDGES`). Every import that runs the wrong way today is
listed below as a named exception with the reason it exists and the issue-20 step that removes
it. The contract fails on a new wrong-way import, and also on a listed exception that no longer
occurs, so the list only shrinks: whoever removes a back-edge deletes its line.

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

# Why each kind of back-edge exists today, and the issue-20 step that removes it.
STORE = "uses a concrete store; step 'ports': it takes a Protocol the adapter implements, wired in app.py"
DATABASE = "uses Database/TaskRecord of the PostgreSQL adapter; step 'ports' (a store Protocol, rows in domain)"
RUNS_PIPELINE = "drives the pipeline itself; step 'pipeline ports': a runner/probe Protocol given by app.py"
READS_SETTINGS = "reads Settings itself; step 'composition root': app.py passes in the values it needs"
WHOLE_APP = "the servicer holds the whole InferenceApp; step 'edges': it takes only the services it calls"
WHOLE_APP_TYPE_ONLY = f"{WHOLE_APP} (an annotation under TYPE_CHECKING, still a dependency)"
ADAPTER_ERROR = "the edge maps an adapter's error; step 'storage': the adapter raises a domain error instead"
EDGE_BUILDS = "the edge builds the LiveSession (grpc_api/inference.py); step 'edges': a service does it"
PROBE_RESULT = "the edge converts the pipeline's ProbeResult; step 'pipeline ports': the type moves to domain"
HOST_PORT = "formats host:port with the embedded stack's helper; step 'edges': the pure helper moves to domain"
VIDEO_IO = "file/video I/O still in core (video_probe, media); step 'adapters': it moves to the video I/O adapter"
REPO_ROOT = "takes REPO_ROOT from settings; step 'composition root': app.py passes the path in"
SERVER_WIRING = "server.py registers the servicers on InferenceApp (wiring); step 'composition root': it joins app.py"
DECODE = "frame decoding sits in core.detection; step 'services': decoding moves into pipeline/"

# Every back-edge today, (importer, imported) without the "spoton_inference." prefix -> why.
# Grouped by (importer layer -> imported layer); delete a line when its import is gone.
EXCEPTIONS: dict[tuple[str, str], str] = {
    # services -> pipeline
    ("core.camera_health", "pipeline.source_probe"): RUNS_PIPELINE,
    ("core.camera_ops", "pipeline.live_pull"): RUNS_PIPELINE,
    ("core.camera_ops", "pipeline.source_probe"): RUNS_PIPELINE,
    ("core.camera_ops", "pipeline.triton_models"): RUNS_PIPELINE,
    ("core.detection", "pipeline.triton_models"): RUNS_PIPELINE,
    ("core.jobs", "pipeline.annotate"): RUNS_PIPELINE,
    ("core.media", "pipeline.browser_video"): RUNS_PIPELINE,
    ("core.tasks", "pipeline.exports"): RUNS_PIPELINE,
    ("core.tasks", "pipeline.live_pull"): RUNS_PIPELINE,
    ("core.tasks", "pipeline.live_runner"): RUNS_PIPELINE,
    ("core.tasks", "pipeline.runner"): RUNS_PIPELINE,
    ("core.tasks", "pipeline.tracking_settings"): RUNS_PIPELINE,
    ("core.tasks", "pipeline.triton_models"): RUNS_PIPELINE,
    # services -> adapters
    ("core.analytics", "storage.analytics_store"): STORE,
    ("core.camera_health", "storage.camera_health_store"): STORE,
    ("core.camera_health", "storage.postgres"): DATABASE,
    ("core.catalog", "storage.camera_health_store"): STORE,
    ("core.catalog", "storage.catalog_store"): STORE,
    ("core.catalog", "storage.postgres"): DATABASE,
    ("core.jobs", "storage.gallery"): STORE,
    ("core.jobs", "storage.idempotency_store"): STORE,
    ("core.jobs", "storage.identity_sync"): STORE,
    ("core.jobs", "storage.job_store"): STORE,
    ("core.jobs", "storage.postgres"): DATABASE,
    ("core.jobs", "storage.redis_events"): STORE,
    ("core.sink_dispatcher", "storage.sink_store"): STORE,
    ("core.sink_service", "storage.sink_store"): STORE,
    ("core.tasks", "storage.event_outbox"): STORE,
    ("core.tasks", "storage.history_writer"): STORE,
    ("core.tasks", "storage.idempotency_store"): STORE,
    ("core.tasks", "storage.identity_sync"): STORE,
    ("core.tasks", "storage.postgres"): DATABASE,
    ("core.tasks", "storage.redis_client"): STORE,
    ("core.tasks", "storage.redis_events"): STORE,
    ("core.tasks", "storage.redis_watch"): STORE,
    ("core.tasks", "storage.replicas"): STORE,
    ("core.tasks", "storage.task_states"): STORE,
    ("core.tasks", "storage.track_writer"): STORE,
    # services -> root
    ("core.camera_health", "settings"): READS_SETTINGS,
    ("core.camera_ops", "settings"): READS_SETTINGS,
    ("core.jobs", "settings"): READS_SETTINGS,
    ("core.sink_policy", "settings"): READS_SETTINGS,
    ("core.source_policy", "settings"): READS_SETTINGS,
    ("core.tasks", "settings"): READS_SETTINGS,
    # pipeline -> services
    ("pipeline.live", "core.detection"): DECODE,
    ("pipeline.live_pull", "core.video_probe"): VIDEO_IO,
    ("pipeline.runner", "core.media"): VIDEO_IO,
    ("pipeline.source_probe", "core.video_probe"): VIDEO_IO,
    # pipeline -> root
    ("pipeline.tracking_settings", "settings"): READS_SETTINGS,
    # adapters -> root
    ("embedded.endpoints", "settings"): READS_SETTINGS,
    ("embedded.postgres", "settings"): READS_SETTINGS,
    ("embedded.redis", "settings"): READS_SETTINGS,
    ("embedded.stack", "settings"): READS_SETTINGS,
    ("embedded.stackfile", "settings"): REPO_ROOT,
    ("embedded.triton", "settings"): READS_SETTINGS,
    ("sinks.registry", "settings"): READS_SETTINGS,
    ("storage.replicas", "settings"): READS_SETTINGS,
    # edges -> pipeline
    ("grpc_api.convert", "pipeline.source_probe"): PROBE_RESULT,
    ("grpc_api.inference", "pipeline.live"): EDGE_BUILDS,
    ("grpc_api.inference", "pipeline.tracking_settings"): EDGE_BUILDS,
    # edges -> adapters
    ("grpc_api.errors", "storage.redis_events"): ADAPTER_ERROR,
    ("grpc_api.server", "embedded.endpoints"): HOST_PORT,
    # edges -> root
    ("grpc_api.analytics", "app"): WHOLE_APP,
    ("grpc_api.auth_service", "app"): WHOLE_APP_TYPE_ONLY,
    ("grpc_api.cameras", "app"): WHOLE_APP,
    ("grpc_api.jobs", "app"): WHOLE_APP,
    ("grpc_api.server", "app"): SERVER_WIRING,
    ("grpc_api.catalog", "app"): WHOLE_APP,
    ("grpc_api.inference", "app"): WHOLE_APP,
    ("grpc_api.system", "app"): WHOLE_APP,
    ("grpc_api.tasks", "app"): WHOLE_APP,
    ("grpc_api.sinks", "app"): WHOLE_APP,
}


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
            "core/__init__.py": "",
            "core/jobs.py": """
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
            "core/rules.py": "",
            "pipeline/__init__.py": "",
            "pipeline/runner.py": "from spoton_inference.core.rules import Rule\n",
        },
    )
    assert import_graph(package) == {
        Edge("core.jobs", "core.rules", type_only=False),
        Edge("core.jobs", "storage.postgres", type_only=False),
        Edge("core.jobs", "settings", type_only=False),
        Edge("core.jobs", "pipeline.runner", type_only=True),
        Edge("core.jobs", "storage.gallery", type_only=False),
        Edge("pipeline.runner", "core.rules", type_only=False),
    }
    assert [(edge.importer, edge.imported) for edge in back_edges(package)] == [
        ("core.jobs", "pipeline.runner"),
        ("core.jobs", "settings"),
        ("core.jobs", "storage.gallery"),
        ("core.jobs", "storage.postgres"),
        ("pipeline.runner", "core.rules"),
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
        ("core.tasks", "services"),
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
