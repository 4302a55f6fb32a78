"""A malformed AWS_XRAY_DAEMON_ADDRESS: the same behaviour under configure() and under
``opentelemetry-instrument`` with the awsxray distro (real processes).

A typo in a deployment variable must not take the application down, and must not pass
unnoticed: one ERROR line names the variable and its value, and tracing goes on with the default
address, as when the variable is unset (docs/exporter.md, docs/decisions.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent

WORK = """
from opentelemetry import trace
with trace.get_tracer("t").start_as_current_span("work") as span:
    print("recording", span.is_recording())
provider = trace.get_tracer_provider()
processor = provider._active_span_processor._span_processors[0]
exporter = getattr(processor, "exporter", None) or processor.span_exporter
print("exporting to", exporter.daemon_address.udp)
print("alive")
"""

CONFIGURE = "from otel_xray import configure\nconfigure('typo-app')\n" + WORK


def _env(value: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_XRAY"))}
    env.update(AWS_XRAY_DAEMON_ADDRESS=value, OTEL_SERVICE_NAME="typo-app")
    return env


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("value", ["xray-daemon", "tcp:127.0.0.1:2000"])
def test_configure_and_opentelemetry_instrument_behave_the_same(value: str, tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(WORK))
    under_configure = _run([sys.executable, "-c", CONFIGURE], _env(value))
    under_instrument = _run(
        [str(VENV_BIN / "opentelemetry-instrument"), sys.executable, str(app)],
        {**_env(value), "OTEL_PYTHON_DISTRO": "awsxray"},
    )
    for result in (under_configure, under_instrument):
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "recording True",
            "exporting to 127.0.0.1:2000",
            "alive",
        ]
        assert "Traceback" not in result.stderr
        named = [line for line in result.stderr.splitlines() if "AWS_XRAY_DAEMON_ADDRESS" in line]
        assert len(named) == 1, result.stderr
        assert f"Invalid AWS_XRAY_DAEMON_ADDRESS={value!r}" in named[0]
        assert named[0].endswith("using the default 127.0.0.1:2000 instead")
