"""Segment documents -> daemon datagrams: compact JSON, 64 KB budget, embedding.

Every document is encoded exactly once. Embedding a subsegment in its parent is byte
concatenation of already-encoded documents (``parent[:-1] + ',"subsegments":[' ... ']}'``),
which is why embedded subsegments keep their ``type``/``trace_id``/``parent_id`` like the X-Ray
SDK for Python writes them: the bytes are the same whether a subsegment travels embedded or on
its own, so sizes are known exactly before anything is joined and nothing is encoded twice.

Every body is strict UTF-8 JSON, whatever the span held: a lone surrogate (a file name decoded
with ``surrogateescape``, half of a pair cut by a careless slice) cannot be written in UTF-8, and
the ``\\udcff`` escape JSON would allow is refused by the daemon's and the collector's decoders, so
each surrogate code point becomes U+FFFD (the Unicode replacement character). Only a document
orjson refuses pays for this; the common path is one ``orjson.dumps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_xray.wire import BODY_BUDGET, HEADER, dumps

_SUBSEGMENTS_OPEN = b',"subsegments":['
_SUBSEGMENTS_CLOSE = b"]}"
#: Bytes added to a parent by embedding n children of total size s: open + s + (n-1) commas + "]".
_EMBED_OVERHEAD = len(_SUBSEGMENTS_OPEN) + len(_SUBSEGMENTS_CLOSE) - 1

TRUNCATION_MARKER = "...[truncated by otel-xray]"


# ------------------------------------------------------------------------------------------
# Truncation of a single oversized document


@dataclass
class Truncation:
    """What had to be cut from one document to fit in a datagram."""

    document_id: str
    original_bytes: int
    final_bytes: int
    fields: list[str] = field(default_factory=list)
    #: Metadata entries and annotations removed whole (when shortening values was not enough).
    dropped_attributes: int = 0


def truncate_to_fit(
    document: dict[str, Any],
    body: bytes,
    budget: int = BODY_BUDGET,
    encode: Callable[[Any], bytes] = dumps,
) -> tuple[bytes | None, Truncation]:
    """Cut the largest metadata/annotation/SQL/exception values of ``document`` until it fits.

    Mutates ``document``. Strings keep their head plus :data:`TRUNCATION_MARKER`; structured
    metadata values become their (cut) JSON text; stack traces lose frames from the end and say
    so in the exception's ``truncated`` count, as X-Ray expects. When no value is long enough
    to shorten (a span with thousands of small attributes), whole metadata entries, then
    annotations, are removed, largest first, and counted in ``dropped_attributes``. Returns
    ``(None, ...)`` when even that is not enough (say a 70 KB segment name): the caller drops
    the document.
    """
    report = Truncation(str(document.get("id", "")), len(body), len(body))
    for _ in range(8):
        excess = len(body) - budget
        if excess <= 0:
            report.final_bytes = len(body)
            return body, report
        candidates = sorted(
            (c for c in _candidates(document, encode) if c.size > _WORTH_CUTTING),
            key=lambda c: c.size,
            reverse=True,
        )
        if candidates:
            for candidate in candidates:
                if excess <= 0:
                    break
                saved = candidate.cut(excess + len(TRUNCATION_MARKER) + 16)
                if saved > 0 and candidate.path not in report.fields:
                    report.fields.append(candidate.path)
                excess -= saved
        else:
            dropped = _drop_entries(document, excess, encode)
            if not dropped:
                break
            report.dropped_attributes += dropped
        body = encode(document)
    report.final_bytes = len(body)
    return (body if len(body) <= budget else None), report


#: Values no longer than this are not shortened: the marker alone would take their place.
_WORTH_CUTTING = 2 * len(TRUNCATION_MARKER)


def _drop_entries(document: dict[str, Any], excess: int, encode: Callable[[Any], bytes]) -> int:
    """Remove whole metadata entries, then annotations, largest first, until about ``excess``
    bytes are gone; return how many were removed."""
    entries: list[tuple[int, int, dict[str, Any], str]] = []  # (rank, -size, container, key)
    metadata = document.get("metadata")
    if isinstance(metadata, dict):
        for values in metadata.values():
            if isinstance(values, dict):
                for key, value in values.items():
                    entries.append((0, -_entry_size(key, value, encode), values, key))
    annotations = document.get("annotations")
    if isinstance(annotations, dict):
        for key, value in annotations.items():
            entries.append((1, -_entry_size(key, value, encode), annotations, key))
    entries.sort(key=lambda entry: entry[:2])
    dropped = saved = 0
    for _, negative_size, container, key in entries:
        if saved >= excess:
            break
        del container[key]
        saved -= negative_size
        dropped += 1
    return dropped


def _entry_size(key: str, value: Any, encode: Callable[[Any], bytes]) -> int:
    """Bytes ``"key":value,`` takes in the encoded document."""
    return len(encode(key)) + len(encode(value)) + 2


class _Candidate:
    """One value that may be shortened: ``container[key]``, ``size`` encoded bytes."""

    __slots__ = ("container", "key", "path", "size", "encode")

    def __init__(self, container: Any, key: Any, path: str, encode: Callable[[Any], bytes]) -> None:
        self.container = container
        self.key = key
        self.path = path
        self.encode = encode
        self.size = len(encode(container[key]))

    def cut(self, need: int) -> int:
        """Shorten the value by at least ``need`` encoded bytes if possible; return bytes saved."""
        value = self.container[self.key]
        if self.key == "stack" and isinstance(value, list):
            return self._cut_stack(value, need)
        text = value if isinstance(value, str) else self.encode(value).decode("utf-8", "replace")
        keep_bytes = self.size - need - len(TRUNCATION_MARKER)
        if keep_bytes <= 0 or not text:
            new = TRUNCATION_MARKER
        else:
            # Escapes and multi-byte characters make bytes >= chars: scale the cut accordingly.
            ratio = len(text) / max(self.size, 1)
            new = text[: max(0, int(keep_bytes * ratio))] + TRUNCATION_MARKER
        self.container[self.key] = new
        new_size = len(self.encode(new))
        saved, self.size = self.size - new_size, new_size
        return saved

    def _cut_stack(self, frames: list[Any], need: int) -> int:
        per_frame = self.size / max(len(frames), 1)
        drop = min(len(frames), max(1, math.ceil(need / max(per_frame, 1.0))))
        keep = frames[: len(frames) - drop]
        self.container["stack"] = keep
        previous = self.container.get("truncated")
        self.container["truncated"] = (previous if isinstance(previous, int) else 0) + drop
        new_size = len(self.encode(keep))
        saved, self.size = self.size - new_size, new_size
        return saved


def _candidates(document: dict[str, Any], encode: Callable[[Any], bytes]) -> Iterable[_Candidate]:
    metadata = document.get("metadata")
    if isinstance(metadata, dict):
        for namespace, values in metadata.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    if value is not None and not isinstance(value, (bool, int, float)):
                        yield _Candidate(values, key, f"metadata.{namespace}.{key}", encode)
    annotations = document.get("annotations")
    if isinstance(annotations, dict):
        for key, value in annotations.items():
            if isinstance(value, str):
                yield _Candidate(annotations, key, f"annotations.{key}", encode)
    sql = document.get("sql")
    if isinstance(sql, dict):
        for key in ("sanitized_query", "url", "connection_string"):
            if isinstance(sql.get(key), str):
                yield _Candidate(sql, key, f"sql.{key}", encode)
    cause = document.get("cause")
    if isinstance(cause, dict) and isinstance(cause.get("exceptions"), list):
        for index, exception in enumerate(cause["exceptions"]):
            if not isinstance(exception, dict):
                continue
            if isinstance(exception.get("stack"), list) and exception["stack"]:
                yield _Candidate(exception, "stack", f"cause.exceptions[{index}].stack", encode)
            if isinstance(exception.get("message"), str):
                yield _Candidate(exception, "message", f"cause.exceptions[{index}].message", encode)


# ------------------------------------------------------------------------------------------
# Embedding and splitting


class EncodedDocument:
    """One encoded document plus what embedding needs to know about it.

    ``parent_key`` is set only for a subsegment (only subsegments nest: a segment whose parent
    is in this process, a server span called by our own client span, is still its own
    segment). Made once per document on the export path, so it reads the dict and nothing else.
    """

    __slots__ = ("body", "key", "parent_key", "span_index", "children", "size")

    def __init__(self, document: dict[str, Any], body: bytes, span_index: int) -> None:
        self.body = body
        self.span_index = span_index
        self.size = len(body)
        self.children: list[EncodedDocument] = []
        get = document.get
        trace_id = get("trace_id")
        self.key: tuple[Any, Any] = (trace_id, get("id"))
        parent = get("parent_id") if get("type") == "subsegment" else None
        self.parent_key: tuple[Any, Any] | None = (trace_id, parent) if parent else None


class Datagram:
    """One datagram's payload and the spans whose documents it carries."""

    __slots__ = ("payload", "span_indexes", "documents")

    def __init__(self, payload: bytes, span_indexes: list[int], documents: int) -> None:
        self.payload = payload
        self.span_indexes = span_indexes
        self.documents = documents


def assemble(
    documents: Sequence[EncodedDocument], embed: bool = True, budget: int = BODY_BUDGET
) -> tuple[list[Datagram], int]:
    """Group documents into datagrams; return them and how many were split off for size.

    With ``embed``, finished subsegments whose parent is in the same batch travel inside it (a
    request's segment and its client calls usually end up in one export batch), as long as the
    whole stays within ``budget``; when it would not, the largest child subtrees are sent as
    independent subsegment documents instead (Java's streaming, but only as much as needed).
    Children come out before their parents.
    """
    if not embed or len(documents) == 1:
        return [Datagram(HEADER + d.body, [d.span_index], 1) for d in documents], 0
    by_key = {d.key: d for d in documents}
    roots: list[EncodedDocument] = []
    for doc in documents:
        if doc.parent_key is not None:
            parent = by_key.get(doc.parent_key)
            if parent is not None and parent is not doc:
                parent.children.append(doc)
                continue
        roots.append(doc)
    out: list[Datagram] = []
    split = 0
    placed = 0
    for root in roots:
        if root.children:
            split += _fit(root, budget, out)
        else:
            out.append(Datagram(HEADER + root.body, [root.span_index], 1))
    for datagram in out:
        placed += datagram.documents
    if placed != len(documents):  # a parent_id cycle: send the unreached ones on their own
        reached = {id(d) for d in _walk_all(roots)}
        for doc in documents:
            if id(doc) not in reached:
                doc.children = []
                out.append(Datagram(HEADER + doc.body, [doc.span_index], 1))
    return out, split


#: A document, its encoded body and the index of the span it came from: what the exporter has
#: for each document of a trace before framing.
Encoded = tuple[dict[str, Any], bytes, int]


def pack(
    trace: Sequence[Encoded], embed: bool = True, budget: int = BODY_BUDGET
) -> tuple[list[Datagram], int]:
    """:func:`assemble` for the documents of one trace, with shortcuts for the usual shapes.

    A lone document, and a segment (last: spans end after their children) with the
    subsegments it directly holds, are framed straight from their bodies; anything else goes
    through :func:`assemble`. This runs once per trace on the export path, where making an
    :class:`EncodedDocument` per document costs as much as the framing itself.
    """
    if len(trace) == 1 or not embed:
        return [Datagram(HEADER + body, [index], 1) for _, body, index in trace], 0
    family = _family(trace, budget)
    if family is not None:
        return [family], 0
    return assemble([EncodedDocument(*encoded) for encoded in trace], embed, budget)


def _family(trace: Sequence[Encoded], budget: int) -> Datagram | None:
    """The last document with all the others embedded in it, or None when they are not all
    its subsegments or do not fit together."""
    root, root_body, root_index = trace[-1]
    root_id = root.get("id")
    if not root_id:
        return None
    trace_id = root.get("trace_id")
    above = root.get("parent_id")  # none of the children may be the root's own parent
    size = len(root_body) + _EMBED_OVERHEAD - 1
    # One join copies every body once; the memoryview drops the root's "}" without a copy.
    chunks: list[Any] = [HEADER, memoryview(root_body)[:-1], _SUBSEGMENTS_OPEN]
    spans = [root_index]
    for position in range(len(trace) - 1):
        document, body, index = trace[position]
        if (
            document.get("parent_id") != root_id
            or document.get("type") != "subsegment"
            or document.get("trace_id") != trace_id
            or document.get("id") == above
        ):
            return None
        if position:
            chunks.append(b",")
        chunks.append(body)
        spans.append(index)
        size += len(body) + 1
    if size > budget:
        return None
    chunks.append(_SUBSEGMENTS_CLOSE)
    return Datagram(b"".join(chunks), spans, len(spans))


def _fit(root: EncodedDocument, budget: int, out: list[Datagram]) -> int:
    """Fit ``root``'s subtree into ``budget`` bottom-up, emitting detached subtrees to ``out``."""
    split = 0
    # Iterative post-order: span trees can be deep and recursion would be the wrong failure.
    order: list[EncodedDocument] = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    for node in reversed(order):
        children = node.children
        if not children:
            continue
        total = node.size + _EMBED_OVERHEAD + sum(c.size for c in children) + len(children) - 1
        if total > budget:
            detached: set[int] = set()
            for largest in sorted(children, key=lambda c: c.size, reverse=True):
                if total <= budget:
                    break
                detached.add(id(largest))
                total -= largest.size + 1
                _emit(largest, out)
                split += 1
            node.children = [c for c in children if id(c) not in detached]
            if not node.children:
                total = node.size
        node.size = total
    _emit(root, out)
    return split


def _emit(node: EncodedDocument, out: list[Datagram]) -> None:
    chunks: list[bytes] = [HEADER]
    spans: list[int] = []
    count = _render(node, chunks, spans)
    out.append(Datagram(b"".join(chunks), spans, count))


def _render(node: EncodedDocument, chunks: list[bytes], spans: list[int]) -> int:
    spans.append(node.span_index)
    if not node.children:
        chunks.append(node.body)
        return 1
    count = 1
    chunks.append(node.body[:-1])
    chunks.append(_SUBSEGMENTS_OPEN)
    for index, child in enumerate(node.children):
        if index:
            chunks.append(b",")
        count += _render(child, chunks, spans)
    chunks.append(_SUBSEGMENTS_CLOSE)
    return count


def _walk_all(roots: Sequence[EncodedDocument]) -> Iterable[EncodedDocument]:
    stack = list(roots)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children)
