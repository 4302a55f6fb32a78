"""Fuzz: any bytes as a sampling rules file load as rules or fail with a ValueError naming the
file (issue 15: 85 of 2,000 mutated files used to raise something else)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_xray.sampling.rules import LocalRules, load_rules
from tests.sampling.test_rules import HEALTHCHECK_V1

pytestmark = pytest.mark.fuzz

VALID = json.dumps(HEALTHCHECK_V1).encode()

_DIR = Path(tempfile.mkdtemp(prefix="fuzz-rules-"))


def load_bytes(data: bytes) -> None:
    path = _DIR / "sampling-rules.json"
    path.write_bytes(data)
    try:
        assert isinstance(load_rules(path), LocalRules)
    except ValueError as exc:
        assert type(exc) is ValueError, repr(exc)
        assert str(exc).startswith(f"{path}: "), str(exc)


@given(st.binary(max_size=2048))
def test_any_bytes(data: bytes) -> None:
    load_bytes(data)


_EDIT = st.tuples(st.integers(0, len(VALID)), st.integers(0, 8), st.binary(max_size=12))


@given(st.lists(_EDIT, max_size=6))
def test_mutated_valid_file(edits: list[tuple[int, int, bytes]]) -> None:
    """A valid file with spans deleted and bytes inserted, the way a hand edit goes wrong."""
    data = bytearray(VALID)
    for position, delete, insert in edits:
        position = min(position, len(data))
        data[position : position + delete] = insert
    load_bytes(bytes(data))


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_FIELDS = ["version", "default", "rules", "fixed_target", "rate", "service_name", "url_path"]


@given(st.sampled_from(_FIELDS), _JSON, st.sampled_from(["top", "default", "rule"]))
def test_any_json_value_in_any_field(field: str, value: Any, where: str) -> None:
    document = json.loads(VALID)
    target = {"top": document, "default": document["default"], "rule": document["rules"][0]}
    target[where][field] = value
    try:
        text = json.dumps(document)
    except ValueError:  # integers over 4,300 digits cannot be written by json.dumps
        text = VALID.decode().replace('"rate": 1}', '"rate": ' + "9" * 5000 + "}")
    load_bytes(text.encode())
    try:
        assert isinstance(load_rules(document), LocalRules)  # the parsed-dict road too
    except ValueError as exc:
        assert type(exc) is ValueError and str(exc).startswith("<dict>: "), str(exc)


@given(st.integers(1, 200_000), st.sampled_from(["[", "{", '{"a":']))
def test_deep_nesting(depth: int, opener: str) -> None:
    load_bytes(('{"version": 2, "default": ' + opener * depth).encode())
