"""Which documents the collector accepts: the corpus, the daemon framing and field checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from otel_xray_collector.documents import Accepted
from otel_xray_collector.ingest.validate import (
    BAD_FIELD,
    BAD_HEADER,
    BAD_JSON,
    EMPTY,
    MISSING_FIELD,
    NO_BODY,
    OVERSIZE,
    Rejected,
    parse_body,
    split_datagram,
)

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "corpus"

# Outcome per corpus file (tests/data/corpus/SOURCE.md). Where the upstream receiver rejects a
# document that the X-Ray service would store, we store it (docs/decisions.md, "Collector
# validation"): an unknown namespace, a SQL url without a scheme and a numeric `cause` are
# informational fields, so the trace is kept and those fields are simply not interpreted.
ACCEPTED = [
    "awsMissingAwsField.txt",
    "awsValidAwsFields.txt",
    "ddbSample.txt",
    "indepSubsegment.txt",
    "indepSubsegmentWithContentLengthString.txt",
    "indepSubsegmentWithInvalidSqlUrl.txt",
    "indepSubsegmentWithLocalNamespace.txt",
    "indepSubsegmentWithSql.txt",
    "invalidNamespace.txt",
    "minCauseIsExceptionId.txt",
    "minCauseIsInvalid.txt",
    "minInProgress.txt",
    "minOtherFields.txt",
    "serverSample.txt",
]
REJECTED = {
    "segmentValidationFailed.txt": (MISSING_FIELD, 'missing "start_time"'),
    "segmentWithParentId.txt": (MISSING_FIELD, 'needs "end_time" or "in_progress": true'),
}


def test_every_corpus_file_has_a_decided_outcome() -> None:
    files = {p.name for p in CORPUS.glob("*.txt")}
    assert files == set(ACCEPTED) | set(REJECTED)


@pytest.mark.parametrize("name", ACCEPTED)
def test_corpus_document_is_accepted(name: str) -> None:
    body = (CORPUS / name).read_bytes()
    [outcome] = parse_body(body)
    assert isinstance(outcome, Accepted)
    doc = json.loads(body)
    assert (outcome.trace_id, outcome.segment_id) == (doc["trace_id"], doc["id"])
    assert outcome.in_progress == ("end_time" not in doc)
    assert outcome.body == body  # stored exactly as sent


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_corpus_document_is_rejected_with_reason(name: str) -> None:
    [outcome] = parse_body((CORPUS / name).read_bytes())
    assert isinstance(outcome, Rejected)
    reason, message = REJECTED[name]
    assert outcome.reason == reason
    assert message in outcome.message
    assert outcome.error_code == "MissingParam"
    assert outcome.segment_id == json.loads((CORPUS / name).read_text())["id"]


def test_sample_request_subsegments_without_parent_are_rejected() -> None:
    """sample.json (an early OTel exporter) sends `type: subsegment` with no parent_id."""
    documents = json.loads((CORPUS / "sample.json").read_text())["TraceSegmentDocuments"]
    outcomes = [o for d in documents for o in parse_body(d.encode())]
    assert len(outcomes) == 50
    assert all(isinstance(o, Rejected) and o.reason == MISSING_FIELD for o in outcomes)
    assert all("parent_id" in o.message for o in outcomes)


@pytest.mark.parametrize(
    "header",
    [
        b'{"format":"json","version":1}',
        b'{"format": "json", "version": 1}',
        b'{ "version" : 1 , "format" : "JSON" , "extra": true }',
    ],
)
def test_header_is_parsed_as_json_whatever_the_spacing(header: bytes) -> None:
    body = (CORPUS / "serverSample.txt").read_bytes()
    assert split_datagram(header + b"\n" + body) == body


@pytest.mark.parametrize(
    "datagram, reason",
    [
        (b"", EMPTY),
        (b"garbage without newline", NO_BODY),
        (b'{"format":"json","version":1}\n', NO_BODY),
        (b'{"format":"json","version":1}\n  \n', NO_BODY),
        (b'{"format":"json","version":"1"}\n{}', BAD_HEADER),
        (b'{"format":"xml","version":1}\n{}', BAD_HEADER),
        (b'{"format":"json"\n{}', BAD_HEADER),
        (b"\xff\xfe\n{}", BAD_HEADER),
    ],
)
def test_bad_framing_is_rejected(datagram: bytes, reason: str) -> None:
    outcome = split_datagram(datagram)
    assert isinstance(outcome, Rejected) and outcome.reason == reason


def _doc(**changes: object) -> bytes:
    doc = {
        "name": "svc",
        "id": "0123456789abcdef",
        "trace_id": "1-5f2aebcc-b475d14618c51eaa28753d37",
        "start_time": 1.0,
        "end_time": 2.0,
    }
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


@pytest.mark.parametrize(
    "body, reason, fragment",
    [
        (b'{"name": "x", "id": ', BAD_JSON, "not JSON"),
        (b"[]", BAD_FIELD, "JSON object"),
        (b'"just a string"', BAD_FIELD, "JSON object"),
        (_doc(id=None), MISSING_FIELD, '"id"'),
        (_doc(id="XYZ"), BAD_FIELD, '"id" must be 16 hex'),
        (_doc(id=12), BAD_FIELD, '"id" must be 16 hex'),
        (_doc(trace_id="1-abc"), BAD_FIELD, "trace_id"),
        (_doc(trace_id=None), MISSING_FIELD, "trace_id"),
        (_doc(name=None), MISSING_FIELD, '"name"'),
        (_doc(name=""), BAD_FIELD, '"name"'),
        (_doc(name="n" * 201), BAD_FIELD, "200"),
        (_doc(start_time="1.0"), BAD_FIELD, "start_time"),
        (_doc(start_time=True), BAD_FIELD, "start_time"),
        (_doc(end_time="2"), BAD_FIELD, "end_time"),
        (_doc(type="subsegment"), MISSING_FIELD, "parent_id"),
        (_doc(parent_id="nothex!!nothex!!"), BAD_FIELD, "parent_id"),
        (_doc(subsegments={"id": 1}), BAD_FIELD, "must be a list"),
        (
            _doc(subsegments=[{"id": "0123456789abcdef", "name": "s"}]),
            MISSING_FIELD,
            "subsegments[0].start_time",
        ),
        (b'{"pad": "' + b"x" * 70000 + b'"}', OVERSIZE, "64 KiB"),
    ],
)
def test_invalid_documents_are_rejected_with_a_clear_reason(
    body: bytes, reason: str, fragment: str
) -> None:
    [outcome] = parse_body(body)
    assert isinstance(outcome, Rejected)
    assert outcome.reason == reason
    assert fragment in outcome.message


def test_in_progress_document_without_end_time_is_accepted() -> None:
    [outcome] = parse_body(_doc(end_time=None, in_progress=True))
    assert isinstance(outcome, Accepted) and outcome.in_progress


def test_array_of_subsegments_is_split_into_documents() -> None:
    subs = [
        {
            "name": "a",
            "id": "000000000000000a",
            "trace_id": "1-5f2aebcc-b475d14618c51eaa28753d37",
            "parent_id": "00000000000000ff",
            "type": "subsegment",
            "start_time": 1,
            "end_time": 2,
        },
        {
            "name": "b",
            "id": "bad",
            "trace_id": "1-5f2aebcc-b475d14618c51eaa28753d37",
            "parent_id": "00000000000000ff",
            "type": "subsegment",
            "start_time": 1,
            "end_time": 2,
        },
        {
            "name": "c",
            "id": "000000000000000c",
            "trace_id": "1-5f2aebcc-b475d14618c51eaa28753d37",
            "start_time": 1,
            "end_time": 2,
        },
    ]
    outcomes = parse_body(json.dumps(subs).encode())
    assert isinstance(outcomes[0], Accepted) and outcomes[0].segment_id == "000000000000000a"
    assert json.loads(outcomes[0].body)["name"] == "a"
    assert isinstance(outcomes[1], Rejected) and outcomes[1].reason == BAD_FIELD
    assert isinstance(outcomes[2], Rejected)
    assert "only independent subsegments" in outcomes[2].message
