"""The web console: static files served by the collector at ``/``, reading only its API."""

from __future__ import annotations

from pathlib import Path

STATIC_ROOT = Path(__file__).resolve().parent / "static"
