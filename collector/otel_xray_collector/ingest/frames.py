"""The frames that carry packed documents (``otel_xray_collector.documents``) between the UDP
receiver process and the writer.

A frame is one packed batch plus the bookkeeping the writer needs to keep ``/status`` exact:
how many datagrams it accounts for and the rejections among them (counts and one message per
reason, for the once-a-minute log). Frames go over a pipe: a fixed header, then the parts.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

from otel_xray.wire import dumps, loads

from ..documents import PackedDocuments


class Frame(NamedTuple):
    """What the receiver process hands the writer: documents + the datagrams they came from.

    ``datagrams`` counts every datagram this frame accounts for (rejected ones included), so
    the writer's ``datagrams_processed`` stays comparable with ``received``.
    ``rejects`` maps a reason to (count, one example message); ``noted`` counts what datagrams
    yielded that is neither a document nor a rejection (ADOT's unsampled OTLP spans).
    """

    documents: PackedDocuments
    datagrams: int
    rejects: dict[str, tuple[int, str]]
    noted: dict[str, int] = {}


# documents, datagrams, meta bytes, blob bytes, bookkeeping bytes ({"r": rejects, "n": noted})
_HEADER = struct.Struct("<IIIII")


def encode_frame(frame: Frame) -> bytes:
    meta = frame.documents.meta.encode("ascii")
    rejects = b""
    if frame.rejects or frame.noted:
        rejects = dumps({"r": {k: list(v) for k, v in frame.rejects.items()}, "n": frame.noted})
    return b"".join(
        (
            _HEADER.pack(
                frame.documents.total,
                frame.datagrams,
                len(meta),
                len(frame.documents.blob),
                len(rejects),
            ),
            meta,
            frame.documents.blob,
            rejects,
        )
    )


class FrameReader:
    """Reads whole frames from a blocking pipe; ``None`` at end of file.

    A frame cut short by the writer's death is discarded: its datagrams were never handed
    over, exactly as if they had still been in the kernel buffer.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def _read_exactly(self, size: int) -> bytes | None:
        if size == 0:
            return b""
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            count = os.readv(self._fd, [view[got:]])
            if count == 0:
                return None
            got += count
        return bytes(buffer)

    def read(self) -> Frame | None:
        header = self._read_exactly(_HEADER.size)
        if header is None:
            return None
        count, datagrams, meta_len, blob_len, rejects_len = _HEADER.unpack(header)
        body = self._read_exactly(meta_len + blob_len + rejects_len)
        if body is None:
            return None
        meta = body[:meta_len].decode("ascii") if count else "[]"
        blob = body[meta_len : meta_len + blob_len]
        rejects: dict[str, tuple[int, str]] = {}
        noted: dict[str, int] = {}
        if rejects_len:
            bookkeeping = loads(body[meta_len + blob_len :])
            for reason, (number, message) in bookkeeping["r"].items():
                rejects[reason] = (int(number), str(message))
            noted = {name: int(number) for name, number in bookkeeping["n"].items()}
        return Frame(PackedDocuments(count, meta, blob), datagrams, rejects, noted)
