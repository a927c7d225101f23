"""The inference service's import graph, sorted into the layers of issue 20.

One table (:data:`LAYER_OF_PREFIX`) says which layer each package or top-level module of
``spoton_inference`` belongs to, and one set (:data:`ALLOWED_EDGES`) says which layer may
import which. ``tests/test_import_contract.py`` checks the graph against them; run this
module to print the figures the issue's closing note asks for (each layer's size and the
back-edges between each pair of layers)::

    cd tests && ../.venv/bin/python -m support.import_graph
    .venv/bin/python tests/support/import_graph.py

Imports are read with :mod:`ast`, never executed, like ``tests/facade/test_boundary.py``:
``import x``, ``from x import y`` (``y`` counts as the module ``x.y`` when that file exists),
relative imports resolved against the importing file, and constant strings passed to
``importlib.import_module`` or ``__import__``. Imports inside functions count too: a lazy
import is still a dependency. Imports under ``if TYPE_CHECKING:`` count as well (a type-only
import of a concrete store is the very coupling the ports remove), but each edge records
whether it is type-only so the contract can say so.

Example:
    >>> layer_of("spoton_inference.storage.job_store")
    'adapters'
    >>> layer_of("spoton_inference.app")
    'root'
    >>> ("services", "adapters") in ALLOWED_EDGES
    False
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "spoton_inference"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / "inference" / PACKAGE

DOMAIN = "domain"
SERVICES = "services"
PIPELINE = "pipeline"
ADAPTERS = "adapters"
EDGES = "edges"
ROOT = "root"
# Innermost first: the order the figures are printed in.
LAYERS = (DOMAIN, SERVICES, PIPELINE, ADAPTERS, EDGES, ROOT)

# Module prefix (below spoton_inference) -> layer. The longest matching prefix wins, so a
# single module can be given a layer other than its package's while a move is pending.
LAYER_OF_PREFIX: dict[str, str] = {
    "domain": DOMAIN,
    # Pure tracking math: numpy and the domain types, no I/O.
    "tracking": DOMAIN,
    # The use cases..
    "services": SERVICES,
    # File and video I/O on this server's disk: probing, reading cameras' videos, media, PNGs.
    "files": ADAPTERS,
    "pipeline": PIPELINE,
    "storage": ADAPTERS,
    "embedded": ADAPTERS,
    "sinks": ADAPTERS,
    # Builds the ONNX/TensorRT models from downloaded weights: file and network I/O.
    "modelbuild": ADAPTERS,
    # The synthetic test-footage generator renders and writes video and ground-truth files
    # (I/O); nothing in the service imports it, so it sits outside, with the other adapters.
    "scenes": ADAPTERS,
    "grpc_api": EDGES,
    "app": ROOT,
    "serve": ROOT,
    "launch": ROOT,
    "__main__": ROOT,
    "settings": ROOT,
    "metrics": ROOT,
    "camera_metrics": ROOT,
    "auth_setup": ROOT,
    "compose_secrets": ROOT,
    # The package's own __init__.
    "": ROOT,
}

# (importer layer, imported layer) pairs that run the right way: inward, towards domain.
# Services reach adapters and the pipeline only through ports (typing.Protocol), which live
# in services or domain; the root assembles everything and may import anything.
ALLOWED_EDGES: frozenset[tuple[str, str]] = frozenset(
    {
        (DOMAIN, DOMAIN),
        (SERVICES, DOMAIN),
        (SERVICES, SERVICES),
        (PIPELINE, DOMAIN),
        (PIPELINE, PIPELINE),
        (ADAPTERS, DOMAIN),
        (ADAPTERS, SERVICES),
        (ADAPTERS, ADAPTERS),
        (EDGES, DOMAIN),
        (EDGES, SERVICES),
        (EDGES, EDGES),
        *((ROOT, layer) for layer in LAYERS),
    }
)

IMPORT_FUNCTIONS = ("import_module", "__import__")

# The only libraries outside the standard library that the domain layer may import: maths and
# plain structs, no I/O (cv2 for the homography fit in domain.geometry, scipy for tracking's
# assignment). A database, network or video library there means I/O slipped into the domain.
DOMAIN_LIBRARIES = frozenset({"numpy", "scipy", "msgspec", "cv2"})


@dataclass(frozen=True, order=True)
class Edge:
    """One module importing another, both named without the ``spoton_inference.`` prefix."""

    importer: str
    imported: str
    type_only: bool

    @property
    def layers(self) -> tuple[str, str]:
        """The (importer, imported) layer pair."""
        return layer_of(self.importer), layer_of(self.imported)

    @property
    def allowed(self) -> bool:
        """Whether the edge runs the way :data:`ALLOWED_EDGES` permits."""
        return self.layers in ALLOWED_EDGES


def short_name(module: str) -> str:
    """``spoton_inference.services.jobs`` -> ``services.jobs``; the package itself -> ``""``."""
    return module.removeprefix(PACKAGE).removeprefix(".")


def layer_of(module: str) -> str:
    """The layer of ``module`` (full or short name) by its longest prefix in :data:`LAYER_OF_PREFIX`."""
    parts = short_name(module).split(".") if short_name(module) else []
    for size in range(len(parts), -1, -1):
        layer = LAYER_OF_PREFIX.get(".".join(parts[:size]))
        if layer is not None:
            return layer
    raise KeyError(f"{module}: no layer in LAYER_OF_PREFIX")


def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package by its short name (a package by its ``__init__.py``)."""
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """The ids of every node under an ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) body."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                guarded |= {id(child) for statement in node.body for child in ast.walk(statement)}
    return guarded


def _imported_names(node: ast.AST, package: str) -> Iterator[str]:
    """The full dotted names ``node`` imports; ``package`` is the importer's package for relative imports."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        yield base
        yield from (f"{base}.{alias.name}" for alias in node.names)
    elif isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in IMPORT_FUNCTIONS:
            yield from (
                arg.value for arg in node.args[:1] if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            )


def _package_of(name: str, path: Path) -> str:
    """The package relative imports in module ``name`` (file ``path``) are resolved against."""
    full = f"{PACKAGE}.{name}" if name else PACKAGE
    return full if path.name == "__init__.py" else full.rpartition(".")[0]


def libraries_of(name: str, path: Path) -> set[str]:
    """The top-level names of what module ``name`` imports from outside the package and the stdlib."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _package_of(name, path)
    tops = {dotted.split(".")[0] for node in ast.walk(tree) for dotted in _imported_names(node, package)}
    return tops - set(sys.stdlib_module_names) - {PACKAGE}


def imports_of(name: str, path: Path, modules: Iterable[str]) -> set[Edge]:
    """The edges from module ``name`` (short name, file ``path``) to the other package modules.

    ``from a import b`` gives ``a.b`` when that is a module, else ``a``: the name imported is
    then an attribute of ``a``.
    """
    known = set(modules)
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _package_of(name, path)
    guarded = _type_checking_nodes(tree)
    edges: dict[str, bool] = {}
    for node in ast.walk(tree):
        targets = [short_name(dotted) for dotted in _imported_names(node, package) if dotted.split(".")[0] == PACKAGE]
        if isinstance(node, ast.ImportFrom) and len(targets) > 1:
            submodules = [target for target in targets[1:] if target in known]
            targets = submodules + ([targets[0]] if len(submodules) < len(targets) - 1 else [])
        for target in targets:
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != name:
                edges[target] = edges.get(target, True) and id(node) in guarded
    return {Edge(name, target, type_only) for target, type_only in edges.items()}


def import_graph(package_dir: Path = PACKAGE_DIR) -> set[Edge]:
    """Every edge between two modules of the package."""
    modules = module_files(package_dir)
    return {edge for name, path in modules.items() for edge in imports_of(name, path, modules)}


def back_edges(package_dir: Path = PACKAGE_DIR) -> list[Edge]:
    """The edges :data:`ALLOWED_EDGES` does not permit, sorted."""
    return sorted(edge for edge in import_graph(package_dir) if not edge.allowed)


def figures(package_dir: Path = PACKAGE_DIR) -> str:
    """A Markdown report: modules and lines per layer, then back-edges per layer pair."""
    modules = module_files(package_dir)
    counts: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    for name, path in modules.items():
        counts[layer_of(name)] += 1
        lines[layer_of(name)] += len(path.read_text().splitlines())
    out = ["| layer | modules | lines |", "|---|---:|---:|"]
    out += [f"| {layer} | {counts[layer]} | {lines[layer]} |" for layer in LAYERS]
    out.append(f"| total | {sum(counts.values())} | {sum(lines.values())} |")
    edges = back_edges(package_dir)
    pairs = Counter(edge.layers for edge in edges)
    typed = Counter(edge.layers for edge in edges if edge.type_only)
    importers = {pair: len({edge.importer for edge in edges if edge.layers == pair}) for pair in pairs}
    out += ["", "| back-edge (importer -> imported) | edges | of which TYPE_CHECKING only | importing modules |"]
    out.append("|---|---:|---:|---:|")
    for pair in sorted(pairs, key=lambda pair: (LAYERS.index(pair[0]), LAYERS.index(pair[1]))):
        out.append(f"| {pair[0]} -> {pair[1]} | {pairs[pair]} | {typed[pair]} | {importers[pair]} |")
    out.append(f"| total | {len(edges)} | {sum(typed.values())} | {len({edge.importer for edge in edges})} |")
    out.append("")
    out.append("An edge is one module importing another (however many import statements).")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """Print :func:`figures`; with ``--edges``, also list every back-edge."""
    args = sys.argv[1:] if argv is None else argv
    print(figures())
    if "--edges" in args:
        print()
        for edge in back_edges():
            note = "  # TYPE_CHECKING only" if edge.type_only else ""
            print(f"{edge.importer} -> {edge.imported}  ({' -> '.join(edge.layers)}){note}")


if __name__ == "__main__":
    main()
