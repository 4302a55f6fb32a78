"""The import structure the architecture promises (docs/architecture.md), read from the source.

Packages depend one way: the library's wire format at the bottom, then the collector's neutral
modules, then ingest -> store <- api, and nothing below imports what is above it. A cycle or an
arrow the wrong way fails here, naming the module and the import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from otel_xray_collector.api import filter as filter_module
from otel_xray_collector.store.facts import HttpFacts, NodeFacts, TraceFacts, declared_keys

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "otel_xray": ROOT / "otel_xray",
    "otel_xray_collector": ROOT / "collector" / "otel_xray_collector",
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, directory in PACKAGES.items():
        for path in directory.rglob("*.py"):
            parts = path.relative_to(directory).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[str]:
    """Every project module ``module`` imports (type-only imports included)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from package import module`` depends on the module, not on the package
            names = [
                f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in MODULES else prefix
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


GRAPH = {module: set(_imports(module, path)) for module, path in MODULES.items()}

# Which collector layers each layer may import (besides itself, the library and the neutral
# modules documents, priority and config at the package root).
ALLOWED = {
    "store": set(),
    "ingest": {"store"},
    "forward": set(),
    "api": {"store", "ingest"},
    "console": set(),
}
NEUTRAL = {"documents", "priority", "config", ""}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_collector_layers_import_one_way() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        if not module.startswith("otel_xray_collector."):
            continue
        layer = _layer(module)
        for target in targets:
            if not target.startswith("otel_xray_collector"):
                continue
            other = _layer(target)
            if other == layer or other in NEUTRAL and layer in ALLOWED:
                continue
            if layer in NEUTRAL and layer != "" and other not in NEUTRAL:
                wrong.append(f"{module} -> {target}")
            elif layer in ALLOWED and other not in ALLOWED[layer]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_store_never_imports_ingest() -> None:
    arrows = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module.startswith("otel_xray_collector.store")
        for target in targets
        if target.startswith("otel_xray_collector.ingest")
    ]
    assert arrows == []


def test_the_library_never_imports_the_collector() -> None:
    assert not [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module.startswith("otel_xray.")
        for target in targets
        if target.startswith("otel_xray_collector")
    ]


def test_import_graph_has_no_cycle() -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    # A package importing its own submodules (``__init__`` re-exporting) is not a cycle of
    # dependencies; everything else is.
    real = [
        c for c in cycles if not any(b.startswith(a + ".") for a, b in zip(c, c[1:], strict=False))
    ]
    assert real == []


@pytest.mark.parametrize(
    "fact",
    sorted(
        {*filter_module.NUM_KEYWORDS.values(), *filter_module.STR_KEYWORDS.values()}
        | filter_module.BOOL_KEYWORDS
        | {"ann", "nodes", "edges", "users"}
    ),
)
def test_every_fact_the_filter_reads_is_one_the_store_writes(fact: str) -> None:
    keys = declared_keys(TraceFacts) | declared_keys(NodeFacts) | declared_keys(HttpFacts)
    # "status" is HttpStatus, "user" is the users list, "type" a node's "t" (see api/filter.py)
    aliases = {"status": "HttpStatus", "user": "users", "type": "t"}
    assert aliases.get(fact, fact) in keys
