"""Accepted segment documents and the packed batches that carry them: the one shape ingest
produces and every store consumes (neutral ground, so the store never imports ingest).

A batch is packed as two values: ``meta``, a JSON array with one ``[trace_id, segment_id,
in_progress, offset, length]`` row per document (:data:`META_FIELDS`), and ``blob``, the
document bodies back to back (``offset`` counts from 1, as SQL ``substr`` does). A store can
insert a whole batch with one statement and never escape the bodies into a JSON string.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from otel_xray.wire import dumps, loads


class Accepted(NamedTuple):
    """One valid document, ready for a store: its key fields plus the raw JSON bytes."""

    trace_id: str
    segment_id: str
    in_progress: bool
    body: bytes


#: The columns of one ``meta`` row, in order (a store's insert statement reads them by index).
META_FIELDS = ("trace_id", "segment_id", "in_progress", "offset", "length")
META_INDEX = {name: index for index, name in enumerate(META_FIELDS)}


class PackedDocuments(NamedTuple):
    total: int
    meta: str
    blob: bytes


EMPTY = PackedDocuments(0, "[]", b"")


class Packer:
    """Collects accepted documents into the packed form, in arrival order."""

    __slots__ = ("_meta", "_parts", "_offset")

    def __init__(self) -> None:
        self._meta: list[tuple[str, str, int, int, int]] = []
        self._parts: list[bytes] = []
        self._offset = 1  # SQL substr() counts from 1

    def add(self, doc: Accepted) -> None:
        self.add_fields(doc.trace_id, doc.segment_id, doc.in_progress, doc.body)

    def add_fields(self, trace_id: str, segment_id: str, in_progress: bool, body: bytes) -> None:
        size = len(body)
        self._meta.append((trace_id, segment_id, 1 if in_progress else 0, self._offset, size))
        self._parts.append(body)
        self._offset += size

    def __len__(self) -> int:
        return len(self._meta)

    @property
    def size(self) -> int:
        return self._offset - 1

    def pack(self) -> PackedDocuments:
        if not self._meta:
            return EMPTY
        # trace and segment ids are validated hex, so the meta array is plain ASCII
        return PackedDocuments(
            len(self._meta), dumps(self._meta).decode("ascii"), b"".join(self._parts)
        )


def pack(documents: Iterable[Accepted]) -> PackedDocuments:
    packer = Packer()
    for doc in documents:
        packer.add(doc)
    return packer.pack()


def unpack(packed: PackedDocuments) -> list[Accepted]:
    """The documents again (for the forwarder, the only consumer that needs them one by one)."""
    if not packed.total:
        return []
    blob = packed.blob
    return [
        Accepted(trace_id, segment_id, bool(in_progress), blob[offset - 1 : offset - 1 + size])
        for trace_id, segment_id, in_progress, offset, size in loads(packed.meta)
    ]
