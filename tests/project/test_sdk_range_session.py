"""noxfile.py's SDK-range sessions install the library's test tools by name: every third-party
module the library's tests import must come from a distribution those sessions install, or the
sessions break the day a test starts using a new tool."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _noxfile() -> object:
    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _imported_top_level_modules(paths: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_sdk_range_sessions_install_what_the_library_tests_import() -> None:
    noxfile = _noxfile()
    excluded = [ROOT / part for part in noxfile.NOT_LIBRARY]  # type: ignore[attr-defined]
    files = [ROOT / "conftest.py"] + [
        path
        for path in (ROOT / "tests").rglob("*.py")
        if not any(path.is_relative_to(part) for part in excluded)
    ]
    installed = {_normal(noxfile._name(r)) for r in noxfile._requirements()}  # type: ignore[attr-defined]
    providers = importlib.metadata.packages_distributions()
    local = {"tests", "otel_xray", "examples", "loopback_guard", "pytest_loopback_guard"}
    missing = {}
    for module in sorted(_imported_top_level_modules(files) - local):
        if module in sys.stdlib_module_names or module == "__future__":
            continue
        distributions = {_normal(d) for d in providers.get(module, [])}
        # Installed as a dependency of something the session installs counts too: check
        # the distribution is reachable from the session's requirement list.
        if not distributions & _closure(installed):
            missing[module] = sorted(distributions)
    assert not missing, f"add these to noxfile.LIBRARY_TEST_TOOLS (or the demo extra): {missing}"


def _closure(names: set[str]) -> set[str]:
    """The requirement names plus everything they depend on, as installed in this venv."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" in requirement:
                continue
            todo.append(_normal(re.split(r"[\s;\[<>=!~(]", requirement.strip(), maxsplit=1)[0]))
    return seen


def _normal(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()
