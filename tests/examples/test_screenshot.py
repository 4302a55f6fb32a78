"""The README's images are made by a documented command: run it (into a temporary directory)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_screenshot_command_captures_the_demo_map_and_a_failed_trace(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.microservices.screenshot", "--out", str(tmp_path)]
        + ["--requests", "6"],
        cwd=ROOT,
        env={**os.environ, "LOOPBACK_GUARD_LOG": ""},  # "": the script checks its own guard
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The script itself waited for front's ring to turn red (the failure), the node's charts,
    # and a failed trace with the application's frame; here: both pictures exist.
    assert png_size(tmp_path / "console-map.png") == (1440, 900)
    width, height = png_size(tmp_path / "console-trace.png")
    assert width == 1440 and height >= 900
    # The committed pictures are the same kind of capture.
    assert png_size(ROOT / "docs" / "console-map.png") == (1440, 900)
    assert png_size(ROOT / "docs" / "console-trace.png")[0] == 1440
