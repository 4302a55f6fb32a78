"""The example Dockerfiles copy files that exist and start commands that are installed."""

from __future__ import annotations

import fnmatch
import json
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "examples" / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def copy_sources(path: Path) -> list[str]:
    sources = []
    for word, rest in instructions(path):
        if word == "COPY" and not rest.startswith("--from"):
            sources.extend(shlex.split(rest)[:-1])
    return sources


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; ``!`` re-includes."""
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        if fnmatch.fnmatch(relative, body) or fnmatch.fnmatch(
            relative, body.rstrip("*").rstrip("/") or "*"
        ):
            excluded = not negate
    return excluded


def test_both_dockerfiles_exist() -> None:
    assert {p.name for p in DOCKERFILES} == {"app.Dockerfile", "collector.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_sources_exist_and_are_not_dockerignored(dockerfile: Path) -> None:
    ignore_file = dockerfile.with_name(dockerfile.name + ".dockerignore")
    patterns = [
        line.strip()
        for line in ignore_file.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = copy_sources(dockerfile)
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"
        assert not ignored(source, patterns), f"{source} is excluded by {ignore_file.name}"


def entrypoint(dockerfile: Path) -> list[str]:
    (args,) = [rest for word, rest in instructions(dockerfile) if word == "ENTRYPOINT"]
    value = json.loads(args)
    assert isinstance(value, list)
    return value


def test_collector_image_starts_the_console_script_on_all_interfaces() -> None:
    dockerfile = DOCKER / "collector.Dockerfile"
    project = (ROOT / "collector" / "pyproject.toml").read_text()
    assert entrypoint(dockerfile) == ["otel-xray-collector"]
    scripts = project.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    assert "\notel-xray-collector = " in scripts
    (cmd,) = [rest for word, rest in instructions(dockerfile) if word == "CMD"]
    assert "0.0.0.0:2000" in cmd


def test_app_image_runs_under_opentelemetry_instrument_with_the_distro() -> None:
    dockerfile = DOCKER / "app.Dockerfile"
    assert entrypoint(dockerfile) == ["opentelemetry-instrument"]
    env = " ".join(rest for word, rest in instructions(dockerfile) if word == "ENV")
    assert "OTEL_PYTHON_DISTRO=awsxray" in env and "FLASK_RUN_HOST=0.0.0.0" in env
    requirements = (ROOT / "examples" / "microservices" / "requirements.txt").read_text().lower()
    # opentelemetry-instrument comes from opentelemetry-instrumentation (or the distro package).
    assert "opentelemetry-instrumentation" in requirements or "opentelemetry-distro" in requirements
    assert "flask" in requirements
