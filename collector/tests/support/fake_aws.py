"""What every test that talks to a stand-in AWS needs: fake credentials, no profile files, no
EC2 metadata probe, and a sleep that records backoff delays instead of waiting them."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.tests.support.moto_server import DUMMY_CREDENTIALS


def use_fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Static fake credentials in the environment; botocore finds no profile, no region and
    never reaches for the EC2 metadata endpoint."""
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_INSTANCE_ID"):
        monkeypatch.delenv(name, raising=False)


class Recorder:
    """Injectable sleep: records the backoff delays instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)
