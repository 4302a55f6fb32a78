"""Encoding, truncation, splitting and embedding of hand-made segment documents."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import orjson
import pytest

from otel_xray import encode
from otel_xray.encode import (
    TRUNCATION_MARKER,
    EncodedDocument,
    assemble,
    pack,
    truncate_to_fit,
)
from otel_xray.wire import BODY_BUDGET, HEADER, MAX_DATAGRAM_BYTES, dumps_json, dumps_orjson
from tests.support.schema import assert_valid
from tests.support.udp import parse_datagram

TRACE = "1-5759e988-bd862e3fe1be46a994272793"


def segment(id_: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "front",
        "id": id_,
        "trace_id": TRACE,
        "start_time": 1700000000.25,
        "end_time": 1700000000.5,
        "fault": False,
        "error": False,
        "throttle": False,
    }
    doc.update(extra)
    return doc


def subsegment(id_: str, parent: str, **extra: Any) -> dict[str, Any]:
    return segment(id_, name="api.example.com", type="subsegment", parent_id=parent, **extra)


def encoded(docs: list[dict[str, Any]]) -> list[EncodedDocument]:
    return [EncodedDocument(d, encode.dumps(d), i) for i, d in enumerate(docs)]


def triples(docs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], bytes, int]]:
    return [(d, encode.dumps(d), i) for i, d in enumerate(docs)]


def ids_in(document: dict[str, Any]) -> list[str]:
    out = [document["id"]]
    for child in document.get("subsegments", []):
        out.extend(ids_in(child))
    return out


# -- JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dumps", [dumps_json, dumps_orjson])
def test_encoding_is_compact_utf8_json(dumps: Any) -> None:
    doc = segment("0123456789abcdef", annotations={"city": "Zürich", "n": 3})
    body = dumps(doc)
    assert b", " not in body and b'": ' not in body
    assert "Zürich".encode() in body
    assert json.loads(body) == doc


@pytest.mark.parametrize("dumps", [dumps_json, dumps_orjson])
def test_values_json_cannot_hold_do_not_lose_the_document(dumps: Any) -> None:
    doc = {"nan": float("nan"), "inf": float("inf"), "big": 2**70, "surrogate": "a\udc80b"}
    body = dumps(doc)
    parsed = json.loads(body.decode("utf-8"))  # strict UTF-8
    assert parsed["nan"] is None and parsed["inf"] is None
    assert parsed["big"] == 2**70
    assert parsed["surrogate"] == "a\ufffdb"
    assert orjson.loads(body)["surrogate"] == "a\ufffdb"  # what the daemon stand-ins decode with


@pytest.mark.parametrize("dumps", [dumps_json, dumps_orjson])
def test_lone_surrogates_anywhere_become_replacement_characters(dumps: Any) -> None:
    """Issue 15 case 10: the fallback used to write ``\\udcff`` escapes, which orjson, the
    collector and the daemon refuse as invalid JSON, while the exporter counted the span sent."""
    name = b"caf\xe9-\xff.txt".decode("utf-8", "surrogateescape")
    doc = {
        "annotations": {"file": name},
        "metadata": {"default": {name: [name, {"nested": "\ud800"}], "pair": "\ud83d\ude00"}},
        "other": _Unprintable(),
    }
    body = dumps(doc)
    assert b"\\ud" not in body
    parsed = orjson.loads(body)
    assert parsed["annotations"]["file"] == "caf\ufffd-\ufffd.txt"
    values = parsed["metadata"]["default"]
    assert values["caf\ufffd-\ufffd.txt"] == ["caf\ufffd-\ufffd.txt", {"nested": "\ufffd"}]
    assert values["pair"] == "\ufffd\ufffd"  # each surrogate code point, paired or not
    assert parsed["other"] == "bad \ufffd repr"


class _Unprintable:
    """An attribute value the encoders turn into text with ``str()``, which holds a surrogate."""

    def __str__(self) -> str:
        return "bad \udcff repr"


def test_stdlib_json_is_used_when_orjson_is_missing() -> None:
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "from otel_xray import encode, wire\n"
        "print(wire.ENCODER_NAME, encode.dumps({'a': [1, 2]}).decode())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["json", '{"a":[1,2]}']


# -- truncation ------------------------------------------------------------------------------


def test_oversized_metadata_is_cut_with_a_marker_and_fits() -> None:
    doc = segment(
        "0123456789abcdef",
        metadata={"default": {"payload": "x" * 100_000, "small": "keep me"}},
        annotations={"customer": "alice"},
    )
    body, report = truncate_to_fit(doc, encode.dumps(doc))
    assert body is not None and len(body) <= BODY_BUDGET
    assert report.fields == ["metadata.default.payload"]
    assert report.original_bytes > 100_000 and report.final_bytes == len(body)
    parsed = json.loads(body)
    assert parsed["metadata"]["default"]["payload"].endswith(TRUNCATION_MARKER)
    assert parsed["metadata"]["default"]["small"] == "keep me"
    assert parsed["annotations"] == {"customer": "alice"}
    # It is not cut further than needed: most of the budget is still used.
    assert len(body) > BODY_BUDGET - 1000
    assert_valid(parsed)


def test_many_small_attributes_are_dropped_whole_metadata_before_annotations() -> None:
    """Issue 15 case 12: values too small to cut used to leave the document unfittable."""
    doc = segment(
        "0123456789abcdef",
        metadata={"default": {f"m{i:04d}": f"v{i}" for i in range(4000)}},
        annotations={f"a{i:04d}": i for i in range(3000)},
    )
    original_annotations = dict(doc["annotations"])
    body, report = truncate_to_fit(doc, encode.dumps(doc))
    assert body is not None and len(body) <= BODY_BUDGET
    parsed = json.loads(body)
    kept_metadata = parsed["metadata"]["default"]
    assert parsed["annotations"] == original_annotations  # annotations are searchable: kept
    assert report.dropped_attributes == 4000 - len(kept_metadata) > 0
    assert report.fields == []  # nothing was worth cutting
    assert len(body) > BODY_BUDGET - 1000  # dropped no more than needed
    assert_valid(parsed)


def test_annotations_go_when_metadata_is_not_enough() -> None:
    doc = segment("0123456789abcdef", annotations={f"a{i:05d}": i for i in range(8000)})
    body, report = truncate_to_fit(doc, encode.dumps(doc))
    assert body is not None and len(body) <= BODY_BUDGET
    assert report.dropped_attributes == 8000 - len(json.loads(body)["annotations"]) > 0


def test_multibyte_and_structured_values_are_cut_too() -> None:
    doc = segment(
        "0123456789abcdef",
        metadata={
            "default": {"rows": [{"k": i, "v": "é" * 20} for i in range(3000)]},
            "notes": {"ja": "日本" * 20_000},
        },
    )
    body, report = truncate_to_fit(doc, encode.dumps(doc))
    assert body is not None and len(body) <= BODY_BUDGET
    assert report.fields == ["metadata.default.rows", "metadata.notes.ja"]
    parsed = json.loads(body)
    assert parsed["metadata"]["notes"]["ja"].startswith("日本日本")
    assert_valid(parsed)


def test_long_stack_traces_lose_frames_and_say_how_many() -> None:
    frames = [{"path": f"/srv/app/module{i}.py", "line": i, "label": "f" * 40} for i in range(2000)]
    doc = segment(
        "0123456789abcdef",
        fault=True,
        cause={
            "working_directory": "/srv/app",
            "exceptions": [
                {
                    "id": "1111111111111111",
                    "type": "RecursionError",
                    "message": "deep",
                    "stack": frames,
                }
            ],
        },
    )
    body, report = truncate_to_fit(doc, encode.dumps(doc))
    assert body is not None and len(body) <= BODY_BUDGET
    exception = json.loads(body)["cause"]["exceptions"][0]
    assert report.fields == ["cause.exceptions[0].stack"]
    assert exception["truncated"] == 2000 - len(exception["stack"]) > 0
    assert exception["stack"][0] == frames[0]
    assert_valid(json.loads(body))


def test_sql_queries_are_cut() -> None:
    doc = subsegment(
        "0123456789abcdef",
        "fedcba9876543210",
        namespace="remote",
        sql={"sanitized_query": "SELECT " + ",".join(f"c{i}" for i in range(20_000))},
    )
    body, report = truncate_to_fit(doc, encode.dumps(doc))
    assert body is not None and report.fields == ["sql.sanitized_query"]
    assert json.loads(body)["sql"]["sanitized_query"].endswith(TRUNCATION_MARKER)


def test_document_that_cannot_be_cut_enough_is_reported_unfittable() -> None:
    doc = segment("0123456789abcdef", name="n" * 70_000)
    body, report = truncate_to_fit(doc, encode.dumps(doc))
    assert body is None and report.final_bytes > BODY_BUDGET


# -- assemble ---------------------------------------------------------------------------------


def test_a_batch_with_a_segment_and_its_children_becomes_one_datagram() -> None:
    docs = [
        subsegment("3333333333333333", "2222222222222222", namespace="remote"),
        subsegment("2222222222222222", "1111111111111111", namespace="local"),
        subsegment("4444444444444444", "1111111111111111", namespace="remote"),
        segment("1111111111111111"),
    ]
    datagrams, split = assemble(encoded(docs))
    assert split == 0 and len(datagrams) == 1
    assert datagrams[0].documents == 4 and sorted(datagrams[0].span_indexes) == [0, 1, 2, 3]
    root = parse_datagram(datagrams[0].payload)
    assert_valid(root)
    assert [c["id"] for c in root["subsegments"]] == ["2222222222222222", "4444444444444444"]
    assert root["subsegments"][0]["subsegments"][0]["id"] == "3333333333333333"
    assert root["subsegments"][0]["subsegments"][0] == docs[0]


def test_documents_without_their_parent_in_the_batch_travel_alone() -> None:
    docs = [
        subsegment("2222222222222222", "9999999999999999"),
        # A server segment whose parent is a client subsegment of the same process: never nested.
        segment("3333333333333333", parent_id="2222222222222222"),
        segment("4444444444444444"),
    ]
    datagrams, split = assemble(encoded(docs))
    assert split == 0
    assert sorted(parse_datagram(d.payload)["id"] for d in datagrams) == sorted(
        d["id"] for d in docs
    )
    assert all("subsegments" not in parse_datagram(d.payload) for d in datagrams)


def test_other_traces_are_never_mixed_in() -> None:
    child = subsegment("2222222222222222", "1111111111111111")
    child["trace_id"] = "1-5759e988-000000000000000000000000"
    datagrams, _ = assemble(encoded([segment("1111111111111111"), child]))
    assert len(datagrams) == 2


def test_embedding_off_sends_one_document_per_datagram() -> None:
    docs = [segment("1111111111111111"), subsegment("2222222222222222", "1111111111111111")]
    datagrams, _ = assemble(encoded(docs), embed=False)
    assert [parse_datagram(d.payload) for d in datagrams] == docs


def test_a_tree_too_big_for_one_datagram_is_split_as_little_as_needed() -> None:
    children = [
        subsegment(f"{i:016x}", "a" * 16, metadata={"default": {"blob": "y" * 9_000}})
        for i in range(1, 21)
    ]
    docs = [*children, segment("a" * 16)]
    datagrams, split = assemble(encoded(docs))
    assert all(len(d.payload) <= MAX_DATAGRAM_BYTES for d in datagrams)
    parsed = [parse_datagram(d.payload) for d in datagrams]
    delivered = [i for p in parsed for i in ids_in(p)]
    assert sorted(delivered) == sorted(d["id"] for d in docs), "each document exactly once"
    assert split == len(datagrams) - 1 and 0 < split < 20
    root = next(p for p in parsed if p["id"] == "a" * 16)
    assert len(root["subsegments"]) == 20 - split
    for p in parsed:
        assert_valid(p)
        if p["id"] != "a" * 16:
            assert p["type"] == "subsegment" and p["parent_id"] == "a" * 16


def test_parent_id_cycles_still_deliver_every_document() -> None:
    docs = [
        subsegment("1111111111111111", "2222222222222222"),
        subsegment("2222222222222222", "1111111111111111"),
    ]
    datagrams, _ = assemble(encoded(docs))
    assert sorted(parse_datagram(d.payload)["id"] for d in datagrams) == [
        "1111111111111111",
        "2222222222222222",
    ]


def test_payloads_start_with_the_daemon_header() -> None:
    datagrams, _ = assemble(encoded([segment("1111111111111111")]))
    assert datagrams[0].payload.startswith(HEADER)


# -- pack: the exporter's per-trace entry point ------------------------------------------------


def test_pack_embeds_a_segments_direct_subsegments_exactly_like_assemble() -> None:
    docs = [
        subsegment("2222222222222222", "1111111111111111"),
        subsegment("3333333333333333", "1111111111111111"),
        segment("1111111111111111"),  # last: a span ends after its children
    ]
    datagrams, split = pack(triples(docs))
    general, _ = assemble(encoded(docs))
    assert split == 0 and len(datagrams) == 1
    assert datagrams[0].payload == general[0].payload
    assert datagrams[0].documents == 3 and sorted(datagrams[0].span_indexes) == [0, 1, 2]
    root = parse_datagram(datagrams[0].payload)
    assert_valid(root)
    assert [c["id"] for c in root["subsegments"]] == ["2222222222222222", "3333333333333333"]


@pytest.mark.parametrize(
    "docs",
    [
        # A grandchild: not a family of direct subsegments.
        [
            subsegment("3333333333333333", "2222222222222222"),
            subsegment("2222222222222222", "1111111111111111"),
            segment("1111111111111111"),
        ],
        # A segment whose parent is in the batch stays a segment.
        [segment("2222222222222222", parent_id="1111111111111111"), segment("1111111111111111")],
        # Another trace's subsegment with the same parent id is never embedded.
        [
            subsegment("2222222222222222", "1111111111111111", trace_id="1-5759e988-" + "0" * 24),
            segment("1111111111111111"),
        ],
        # A parent_id cycle.
        [
            subsegment("1111111111111111", "2222222222222222"),
            subsegment("2222222222222222", "1111111111111111"),
        ],
        # The parent is not last.
        [segment("1111111111111111"), subsegment("2222222222222222", "1111111111111111")],
    ],
)
def test_pack_gives_what_assemble_gives_for_every_other_shape(docs: list[dict[str, Any]]) -> None:
    packed, packed_split = pack(triples(docs))
    general, general_split = assemble(encoded(docs))
    assert packed_split == general_split
    assert sorted(d.payload for d in packed) == sorted(d.payload for d in general)


def test_pack_splits_a_family_too_big_for_one_datagram() -> None:
    children = [
        subsegment(f"{i:016x}", "a" * 16, metadata={"default": {"blob": "y" * 9_000}})
        for i in range(1, 11)
    ]
    datagrams, split = pack(triples([*children, segment("a" * 16)]))
    assert all(len(d.payload) <= MAX_DATAGRAM_BYTES for d in datagrams)
    assert 0 < split == len(datagrams) - 1
    delivered = [i for d in datagrams for i in ids_in(parse_datagram(d.payload))]
    assert sorted(delivered) == sorted([c["id"] for c in children] + ["a" * 16])


def test_pack_of_one_document_or_without_embedding() -> None:
    (datagram,), _ = pack(triples([segment("1111111111111111")]))
    assert datagram.payload == HEADER + encode.dumps(segment("1111111111111111"))
    docs = [subsegment("2222222222222222", "1111111111111111"), segment("1111111111111111")]
    flat, _ = pack(triples(docs), embed=False)
    assert [parse_datagram(d.payload) for d in flat] == docs
