"""Every command the documentation shows is run here, or marked illustrative.

``RUN_BY`` registers each runnable block (by file and first line) with the test that runs it;
the tests take the block's text from the document itself, so editing a block changes what runs.
A new shell or Python block that is neither registered nor preceded by ``<!-- illustrative -->``
fails ``test_every_command_block_is_run_or_marked_illustrative`` with its file and line.

Blocks that install packages run in a clean venv made for them (``docs_venv``); Python blocks run
in the venv of the built wheels (tests/project/conftest.py). Blocks that use the daemon's fixed
ports (2000, 4317) run in a private network namespace (``unshare -rn``), where those ports are
free whatever else runs on the machine and nothing can leave.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.project.conftest import ROOT, Venv, make_venv, run
from tests.project.docs_blocks import Block, all_blocks, block, matches, parse
from tests.support.wheelhouse import offline

# (file, first line of the block) -> the test (in this module unless a path is given) that runs it.
RUN_BY: dict[tuple[str, str], str] = {
    ("README.md", "make demo"): "test_make_demo_in_a_fresh_tree",
    ("README.md", "import otel_xray"): "test_python_block_runs",
    ("README.md", "pip install . opentelemetry-instrumentation"): "test_instrumented_app_block",
    ("README.md", "pip install . ./collector"): "test_collector_start_block",
    ("docs/collector.md", "pip install . ./collector"): "test_collector_start_block",
    ("docs/collector-components.md", "pip install opentelemetry-exporter-otlp"): "test_otlp_recipe",
    ("docs/detectors.md", "export OTEL_PYTHON_DISTRO=awsxray"): "test_instrumented_app_block",
    ("docs/detectors.md", "from opentelemetry.sdk.resources import"): "test_python_block_runs",
    ("docs/exporter.md", "from opentelemetry.sdk.trace import"): "test_python_block_runs",
    ("docs/migrating-from-xray-sdk.md", "pip install . opentelemetry-distro"): (
        "test_instrumented_app_block"
    ),
    ("docs/migrating-from-xray-sdk.md", "import otel_xray"): "test_python_block_runs",
    ("docs/migrating-from-xray-sdk.md", "from opentelemetry import propagate"): (
        "test_python_block_runs"
    ),
    # The suite itself runs tests/examples (make test); the block is how to run only that part.
    ("examples/k8s/README.md", ".venv/bin/python -m pytest tests/examples"): (
        "tests/examples/test_k8s_manifests.py"
    ),
}


def blocks_run_by(test: str) -> list[Block]:
    return [block(*key) for key, runner in RUN_BY.items() if runner == test]


# -- the inventory ---------------------------------------------------------------------------


def test_every_command_block_is_run_or_marked_illustrative() -> None:
    unaccounted = [
        f"{b.where}: ```{b.language} block starting {b.key[1]!r} is neither run by a test "
        f"(tests/project/test_docs.py RUN_BY) nor marked <!-- illustrative -->"
        for b in all_blocks()
        if b.is_command and not b.illustrative and not any(matches(b, key) for key in RUN_BY)
    ]
    assert not unaccounted, "\n".join(unaccounted)


def test_every_registered_block_exists_once() -> None:
    for key in RUN_BY:
        block(*key)  # exactly one runnable (not illustrative) block matches


def test_every_registered_runner_is_a_test() -> None:
    tree = ast.parse(Path(__file__).read_text())
    here = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    for runner in set(RUN_BY.values()):
        if "/" in runner:
            path = ROOT / runner
            assert path.is_file() and path.name.startswith("test_"), runner
        else:
            assert runner in here and runner.startswith("test_"), runner


def test_a_new_unmarked_block_is_reported_with_file_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Intro\n\n```sh\nrm -rf build\n```\n\n<!-- illustrative -->\n```sh\nls\n```\n")
    blocks = parse(page, root=tmp_path)
    assert [(b.where, b.illustrative) for b in blocks] == [
        ("page.md:3", False),
        ("page.md:8", True),
    ]


# -- venvs -----------------------------------------------------------------------------------


def documented_installs() -> list[str]:
    """The `pip install` commands of the blocks the tests run, each once, in document order."""
    return list(
        dict.fromkeys(
            command
            for key in RUN_BY
            for command in block(*key).commands()
            if command.startswith("pip install ")
        )
    )


@pytest.fixture(scope="session")
def docs_venv(source_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A clean venv in which the documented `pip install` commands run, from a clone's root."""
    env = make_venv(tmp_path_factory.mktemp("docs-venv") / "venv")
    for command in documented_installs():
        run(["bash", "-c", command], cwd=source_tree, env=offline(env.env()))
    return env


# A Flask app that serves one request through Flask's test client and exits: what `app.py`
# stands for in the documented `opentelemetry-instrument python app.py`.
APP = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index() -> str:
    return "ok"


if __name__ == "__main__":
    assert app.test_client().get("/").status_code == 200
"""
#: What app.py needs beyond the documented installs.
APP_REQUIREMENTS = ["flask"]
RULES = {"version": 2, "rules": [], "default": {"fixed_target": 1, "rate": 1.0}}


@pytest.fixture(scope="session")
def app_dir(source_tree: Path, docs_venv: Venv) -> Path:
    """The clone's root, with the user's `app.py` (and Flask, which it needs) and
    `sampling-rules.json` beside it."""
    run([docs_venv.python, "-m", "pip", "install", "--quiet", *APP_REQUIREMENTS], env=offline())
    (source_tree / "app.py").write_text(APP)
    (source_tree / "sampling-rules.json").write_text(json.dumps(RULES))
    return source_tree


def in_namespace(venv: Venv, mode: str, script: str, cwd: Path, home: Path) -> dict[str, Any]:
    """Run a block in a private network namespace through netns_driver.py."""
    spec = json.dumps({"mode": mode, "script": script, "cwd": str(cwd)})
    driver = Path(__file__).with_name("netns_driver.py")
    env = venv.env(HOME=str(home), XDG_DATA_HOME=str(home / "data"))
    result = run(["unshare", "-rn", venv.python, driver, spec], env=env, timeout=600)
    outcome: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return outcome


def without_installs(b: Block) -> str:
    """The block's commands minus its `pip install` lines (the docs_venv fixture ran those)."""
    return "\n".join(c for c in b.commands() if not c.startswith("pip install "))


# -- the blocks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc", blocks_run_by("test_python_block_runs"), ids=lambda b: b.where.replace("/", "_")
)
def test_python_block_runs(doc: Block, wheel_venv: Venv, tmp_path: Path) -> None:
    (tmp_path / "sampling-rules.json").write_text(json.dumps(RULES))
    result = subprocess.run(
        [str(wheel_venv.python), "-c", doc.text],
        cwd=tmp_path,
        env=wheel_venv.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{doc.where}:\n{result.stderr}"
    assert "Traceback" not in result.stderr, f"{doc.where}:\n{result.stderr}"


@pytest.mark.parametrize(
    "doc",
    blocks_run_by("test_instrumented_app_block"),
    ids=lambda b: b.where.replace("/", "_"),
)
def test_instrumented_app_block(doc: Block, docs_venv: Venv, app_dir: Path, tmp_path: Path) -> None:
    outcome = in_namespace(docs_venv, "udp", without_installs(doc), app_dir, tmp_path)
    assert outcome["returncode"] == 0, f"{doc.where}:\n{outcome['stderr']}"
    assert "Traceback" not in outcome["stderr"], f"{doc.where}:\n{outcome['stderr']}"
    assert len(outcome["segments"]) == 1, f"{doc.where}: {outcome}"
    service = re.search(r"OTEL_SERVICE_NAME=(\S+)", doc.text)
    if service:
        assert outcome["segments"] == [service.group(1)], f"{doc.where}: {outcome}"


@pytest.mark.parametrize(
    "doc", blocks_run_by("test_collector_start_block"), ids=lambda b: b.where.replace("/", "_")
)
def test_collector_start_block(doc: Block, docs_venv: Venv, app_dir: Path, tmp_path: Path) -> None:
    outcome = in_namespace(docs_venv, "daemon", without_installs(doc), app_dir, tmp_path)
    event = outcome["event"]
    assert (event["event"], event["udp"], event["tcp"], event["otlp"]) == (
        "listening",
        "127.0.0.1:2000",
        "127.0.0.1:2000",
        "127.0.0.1:4317",
    )


def test_otlp_recipe(docs_venv: Venv, app_dir: Path, tmp_path: Path) -> None:
    (doc,) = blocks_run_by("test_otlp_recipe")
    outcome = in_namespace(docs_venv, "collector", without_installs(doc), app_dir, tmp_path)
    assert outcome["returncode"] == 0, f"{doc.where}:\n{outcome['stderr']}"
    assert "Traceback" not in outcome["stderr"], outcome["stderr"]
    (summary,) = outcome["summaries"]
    assert summary["Http"]["HttpURL"].endswith("/"), summary


def test_make_demo_in_a_fresh_tree(source_tree: Path) -> None:
    """README's first block: `make demo` on a fresh tree (the same `make test` line is what
    .ci/run runs, and what runs this suite). Lean: at most 350 MB, no deprecation warnings."""
    doc = block(*next(k for k, v in RUN_BY.items() if v == "test_make_demo_in_a_fresh_tree"))
    assert doc.commands() == ["make demo", "make test"]
    assert "make test\n" in (ROOT / ".ci" / "run").read_text()
    result = run(
        ["make", "demo"],
        cwd=source_tree,
        env=offline({**_environ(), "DEMO_EXIT": "1"}),
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert "Console: " in result.stdout
    assert not re.search(r"deprecat", output, re.IGNORECASE), output[-3000:]
    size = int(subprocess.check_output(["du", "-sm", source_tree / ".venv"]).split()[0])
    assert size <= 350, f"demo venv is {size} MB"
    pip = [str(source_tree / ".venv" / "bin" / "python"), "-m", "pip", "show", "-q"]
    for test_tool in ("pytest", "mypy", "ruff", "playwright"):
        assert subprocess.run([*pip, test_tool], capture_output=True).returncode != 0, test_tool


def _environ() -> dict[str, str]:
    """This process's environment minus what belongs to the make and venv running the suite."""
    skip = ("VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    return {k: v for k, v in os.environ.items() if k not in skip}
