from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from otel_xray.detectors.ec2 import Ec2ResourceDetector, looks_like_ec2
from tests.detectors.conftest import write_sysfs
from tests.detectors.metadata_servers import (
    HOSTNAME,
    IMDS_TOKEN,
    ImdsBehaviour,
    RefusedPort,
    RunningServer,
    imds_route,
)

EXPECTED = {
    "cloud.provider": "aws",
    "cloud.platform": "aws_ec2",
    "cloud.account.id": "123456789012",
    "cloud.region": "us-west-2",
    "cloud.availability_zone": "us-west-2b",
    "host.id": "i-1234567890abcdef0",
    "host.type": "t2.micro",
    "host.image.id": "ami-5fb8c835",
    "host.name": HOSTNAME,
}


def no_warnings(caplog: pytest.LogCaptureFixture) -> None:
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [], [r.getMessage() for r in loud]


def test_imdsv2_token_then_identity_and_hostname(
    imds: Callable[..., RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = imds()
    caplog.set_level(logging.DEBUG)

    resource = Ec2ResourceDetector().detect()

    assert dict(resource.attributes) == EXPECTED
    seen = server.seen
    assert [(r.method, r.path) for r in seen] == [
        ("PUT", "/latest/api/token"),
        ("GET", "/latest/dynamic/instance-identity/document"),
        ("GET", "/latest/meta-data/hostname"),
    ]
    assert seen[0].headers["x-aws-ec2-metadata-token-ttl-seconds"] == "60"
    assert all(r.headers["x-aws-ec2-metadata-token"] == IMDS_TOKEN for r in seen[1:])
    no_warnings(caplog)


@pytest.mark.parametrize("refusal", [403, 404, 405])
def test_imdsv1_fallback_when_the_token_call_is_refused(
    imds: Callable[..., RunningServer], refusal: int
) -> None:
    server = imds(ImdsBehaviour(token_status=refusal, require_token=False))

    resource = Ec2ResourceDetector().detect()

    assert dict(resource.attributes) == EXPECTED
    assert all("x-aws-ec2-metadata-token" not in r.headers for r in server.seen[1:])


def test_imdsv1_fallback_when_the_token_answer_never_comes(
    imds: Callable[..., RunningServer],
) -> None:
    """The hop-limit symptom: the PUT is accepted, its answer never arrives; v1 is tried."""
    server = imds(ImdsBehaviour(token_silent=True, require_token=False))

    resource = Ec2ResourceDetector(timeout=0.9).detect()

    assert dict(resource.attributes) == EXPECTED
    assert [r.method for r in server.seen] == ["PUT", "GET", "GET"]


def test_refused_token_on_an_imdsv2_only_instance_gives_empty_quietly(
    imds: Callable[..., RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = imds(ImdsBehaviour(token_status=403, require_token=True))
    caplog.set_level(logging.DEBUG)

    resource = Ec2ResourceDetector().detect()

    assert dict(resource.attributes) == {}
    assert [(r.method, r.path) for r in server.seen][-1] == (
        "GET",
        "/latest/dynamic/instance-identity/document",
    )
    no_warnings(caplog)


def test_hostname_failure_keeps_the_identity(imds: Callable[..., RunningServer]) -> None:
    imds(ImdsBehaviour(hostname_status=404))

    resource = Ec2ResourceDetector().detect()

    expected = dict(EXPECTED)
    del expected["host.name"]
    assert dict(resource.attributes) == expected


def test_constructor_endpoint_overrides_the_environment(
    servers: list[RunningServer], monkeypatch: pytest.MonkeyPatch, refused_port: RefusedPort
) -> None:
    server = RunningServer(imds_route(ImdsBehaviour()))
    servers.append(server)
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", refused_port.http_url)

    resource = Ec2ResourceDetector(endpoint=server.url + "/").detect()

    assert resource.attributes["host.id"] == "i-1234567890abcdef0"


def test_metadata_disabled_means_no_request(
    imds: Callable[..., RunningServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = imds()
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    assert dict(Ec2ResourceDetector().detect().attributes) == {}
    assert server.seen == []


def test_refused_endpoint_is_empty_silent_and_within_budget(
    refused_port: RefusedPort, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", refused_port.http_url)
    caplog.set_level(logging.DEBUG)
    detector = Ec2ResourceDetector(raise_on_error=True)

    started = time.monotonic()
    resource = detector.detect()
    elapsed = time.monotonic() - started

    assert dict(resource.attributes) == {}
    assert elapsed < 1.0  # the detector's own total budget, not a performance claim
    no_warnings(caplog)


def test_malformed_identity_document_is_empty_not_an_exception(
    imds: Callable[..., RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    imds(ImdsBehaviour(identity={"unexpected": True}))
    caplog.set_level(logging.DEBUG)

    assert dict(Ec2ResourceDetector(raise_on_error=True).detect().attributes) == {}
    no_warnings(caplog)


@pytest.mark.parametrize(
    ("files", "verdict"),
    [
        ({"devices/virtual/dmi/id/sys_vendor": "Amazon EC2\n"}, True),  # Nitro
        ({"devices/virtual/dmi/id/board_vendor": "Amazon EC2\n"}, True),
        ({"devices/virtual/dmi/id/bios_version": "4.11.amazon\n"}, True),  # Xen HVM
        ({"hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345abcdef\n"}, True),  # Xen
        ({"devices/virtual/dmi/id/product_uuid": "EC2E1916-9099-7CAF-FD21-012345ABCDEF\n"}, True),
        ({"devices/virtual/dmi/id/sys_vendor": "QEMU\n"}, False),
        ({"devices/virtual/dmi/id/sys_vendor": "Google\n"}, False),
        ({}, None),  # no DMI, no hypervisor: can't tell (e.g. no /sys)
    ],
)
def test_platform_check_reads_dmi_and_hypervisor(
    tmp_path: Path, files: dict[str, str], verdict: bool | None
) -> None:
    root = write_sysfs(tmp_path / "sys", files)

    assert looks_like_ec2(str(root)) is verdict


_PROBE = """
import json, sys
attempts = []
def hook(event, args):
    if event == "socket.connect":
        attempts.append(list(args[1])[:2])
        raise OSError("blocked by test: no packet leaves this process")
sys.addaudithook(hook)
from otel_xray.detectors.ec2 import Ec2ResourceDetector
resource = Ec2ResourceDetector().detect()
print(json.dumps({"attributes": dict(resource.attributes), "connects": attempts}))
"""


def _probe(sysfs: Path) -> dict[str, object]:
    # The probe blocks (and counts) connects itself, before the system call: the suite's
    # loopback guard would refuse them first, so it is left out ("" = unguarded).
    env = {"OTEL_XRAY_SYSFS_ROOT": str(sysfs), "PATH": "/usr/bin:/bin", "LOOPBACK_GUARD_LOG": ""}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(Path(__file__).resolve().parents[2]),
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_default_endpoint_off_ec2_makes_no_connection(tmp_path: Path) -> None:
    sysfs = write_sysfs(tmp_path / "sys", {"devices/virtual/dmi/id/sys_vendor": "QEMU\n"})

    assert _probe(sysfs) == {"attributes": {}, "connects": []}


def test_default_endpoint_on_ec2_probes_the_link_local_address(tmp_path: Path) -> None:
    """The audit hook blocks the connection, so no packet is sent, but the attempt is seen."""
    sysfs = write_sysfs(tmp_path / "sys", {"devices/virtual/dmi/id/sys_vendor": "Amazon EC2\n"})

    assert _probe(sysfs) == {"attributes": {}, "connects": [["169.254.169.254", 80]]}
