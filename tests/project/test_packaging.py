"""`python -m build` makes installable distributions of both projects, and they work installed.

The wheels go into a clean venv (no editable install, no source tree on sys.path): the
collector's command runs, and `configure()` plus one span reaches a UDP socket on 127.0.0.1.
"""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

from tests.project.conftest import Venv, run
from tests.support.udp import HEADER_LINE, UdpDaemon

LICENSE = (Path(__file__).resolve().parents[2] / "LICENSE").read_text()

ONE_SPAN = """
import otel_xray
from opentelemetry import trace

print(otel_xray.__file__)
provider = otel_xray.configure(service_name="wheel-check")
with trace.get_tracer("wheel-check").start_as_current_span("GET /"):
    pass
provider.force_flush()
provider.shutdown()
"""


def test_build_makes_a_wheel_and_an_sdist_of_each_distribution(dists: list[Path]) -> None:
    assert [d.name for d in dists] == [
        "otel_xray-0.1.0-py3-none-any.whl",
        "otel_xray-0.1.0.tar.gz",
        "otel_xray_collector-0.1.0-py3-none-any.whl",
        "otel_xray_collector-0.1.0.tar.gz",
    ]


def test_each_distribution_carries_the_license_and_an_spdx_expression(dists: list[Path]) -> None:
    for dist in dists:
        if dist.suffix == ".whl":
            with zipfile.ZipFile(dist) as wheel:
                names = wheel.namelist()
                (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
                (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
                text, meta = wheel.read(license_file).decode(), wheel.read(metadata).decode()
        else:
            with tarfile.open(dist) as sdist:
                root = sdist.getnames()[0].split("/")[0]
                text = _read(sdist, f"{root}/LICENSE")
                meta = _read(sdist, f"{root}/PKG-INFO")
        assert text == LICENSE, dist.name
        assert "License-Expression: Apache-2.0" in meta.splitlines(), dist.name
        assert "Requires-Python: >=3.11" in meta.splitlines(), dist.name


def test_collector_wheel_ships_the_console(dists: list[Path]) -> None:
    (wheel,) = [d for d in dists if d.name.startswith("otel_xray_collector") and d.suffix == ".whl"]
    with zipfile.ZipFile(wheel) as archive:
        assert any(n.startswith("otel_xray_collector/console/static/") for n in archive.namelist())


def test_collector_help_from_the_installed_wheels(wheel_venv: Venv, tmp_path: Path) -> None:
    result = run([wheel_venv.bin / "otel-xray-collector", "--help"], cwd=tmp_path, timeout=60)
    assert result.stdout.startswith("usage: otel-xray-collector")
    assert "--sampling-rules" in result.stdout


def test_configure_and_one_span_from_the_installed_wheels(
    wheel_venv: Venv, udp_daemon: UdpDaemon, tmp_path: Path
) -> None:
    env = wheel_venv.env(
        AWS_XRAY_DAEMON_ADDRESS=udp_daemon.address,
        AWS_EC2_METADATA_DISABLED="true",
        OTEL_TRACES_SAMPLER="always_on",
    )
    # Run from an empty directory so the source tree cannot stand in for the installed package.
    result = run([wheel_venv.python, "-c", ONE_SPAN], cwd=tmp_path, env=env, timeout=60)
    assert result.stdout.startswith(str(wheel_venv.path / "lib")), result.stdout
    (datagram,) = udp_daemon.wait_for(1)
    header, body = datagram.split(b"\n", 1)
    assert header == HEADER_LINE
    document = json.loads(body)
    assert document["name"] == "wheel-check"
    assert document["trace_id"].startswith("1-")


def _read(archive: tarfile.TarFile, name: str) -> str:
    member = archive.extractfile(name)
    assert member is not None, name
    return member.read().decode()
