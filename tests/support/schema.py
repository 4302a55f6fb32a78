"""Validate documents against AWS's published segment schema (copied into tests/data)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

DATA = Path(__file__).resolve().parent.parent / "data"
SCHEMA_PATH = DATA / "xray-segment-schema.json"
CORPUS = DATA / "corpus"


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(json.loads(SCHEMA_PATH.read_text()))


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Every schema violation of ``document``, as readable strings (empty when valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _validator().iter_errors(document)
    ]


def assert_valid(document: dict[str, Any]) -> None:
    errors = schema_errors(document)
    assert not errors, f"schema errors: {errors}\ndocument: {json.dumps(document)[:2000]}"
