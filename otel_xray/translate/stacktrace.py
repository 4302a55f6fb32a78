"""Stack-trace text (``exception.stacktrace``) -> X-Ray stack frames, per SDK language.

Every parser returns the chain of exceptions the text describes, the recorded exception first
and each earlier one (its cause) after it, each with frames innermost first: the frame that
raised comes first, as every X-Ray SDK except Python's lists them and as the Collector does for
all languages. Type and message of the first entry are ignored by the caller: they come from
the ``exception.type`` / ``exception.message`` attributes, which are exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

MAX_CHAINED_EXCEPTIONS = 10


class ParsedException(NamedTuple):
    type: str
    message: str
    frames: list[dict[str, object]]


def _frame(path: str, line: int, label: str) -> dict[str, object]:
    return {"path": path, "line": line, "label": label}


def _int(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else 0


# --- Python -------------------------------------------------------------------------------------

_PY_SEPARATORS = frozenset(
    {
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
    }
)
_PY_FILE = re.compile(r'^\s+File "(?P<path>[^"]*)"(?P<rest>.*)$')
_PY_LINE = re.compile(r", line (\d+)")
_PY_IDENTIFIER = re.compile(r"^[A-Za-z_][\w.]*$")


def _python_exception_text(lines: list[str]) -> tuple[str, str]:
    text_lines = list(lines)
    while text_lines and not text_lines[-1].strip():
        text_lines.pop()
    if not text_lines:
        return "", ""
    head, rest = text_lines[0], text_lines[1:]
    exc_type, sep, message = head.partition(": ")
    if not sep:
        if head.endswith(":") and _PY_IDENTIFIER.match(head[:-1]):
            exc_type, message = head[:-1], ""
        elif _PY_IDENTIFIER.match(head):
            exc_type, message = head, ""
        else:
            exc_type, message = "", head
    elif not _PY_IDENTIFIER.match(exc_type):
        exc_type, message = "", head
    if rest:
        message = "\n".join([message, *rest])
    return exc_type, message


def _python_block(lines: list[str]) -> ParsedException:
    frames: list[dict[str, object]] = []
    text_start: int | None = None
    for index, line in enumerate(lines):
        match = _PY_FILE.match(line)
        if match:
            rest = match.group("rest")
            number = _PY_LINE.search(rest)
            label = rest.partition(", in ")[2]
            frames.append(_frame(match.group("path"), int(number.group(1)) if number else 0, label))
            text_start = None
        elif line and not line[0].isspace() and not line.startswith("Traceback ("):
            if text_start is None:
                text_start = index
    exc_type, message = (
        _python_exception_text(lines[text_start:]) if text_start is not None else ("", "")
    )
    frames.reverse()
    return ParsedException(exc_type, message, frames)


def parse_python(text: str) -> list[ParsedException]:
    """``traceback.format_exception`` output, chained blocks included (earliest printed first)."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip() in _PY_SEPARATORS:
            blocks.append([])
        else:
            blocks[-1].append(line)
    blocks.reverse()
    return [_python_block(block) for block in blocks[:MAX_CHAINED_EXCEPTIONS]]


# --- Java (and PHP, which prints Java-style traces) --------------------------------------------


def _java_frame(line: str) -> dict[str, object] | None:
    if not line.startswith("\tat ") or not line.endswith(")"):
        return None
    body = line[4:]
    open_paren = body.find("(")
    if open_paren < 0:
        return None
    label = body[:open_paren]
    if "/" in label:
        label = label.split("/", 1)[1]
    location = body[open_paren + 1 : -1]
    path, _, number = location.partition(":")
    return _frame(path, _int(number), label)


def parse_java(text: str) -> list[ParsedException]:
    lines = text.splitlines()
    chain = [ParsedException("", "", [])]
    collecting_message = False
    for line in lines[1:]:
        frame = _java_frame(line)
        if frame is not None:
            chain[-1].frames.append(frame)
            collecting_message = False
        elif line.startswith("Caused by: "):
            if len(chain) >= MAX_CHAINED_EXCEPTIONS:
                break
            exc_type, _, message = line[11:].partition(":")
            chain.append(ParsedException(exc_type.strip(), message.lstrip(" "), []))
            collecting_message = True
        elif collecting_message and not line.startswith("\t"):
            last = chain[-1]
            chain[-1] = last._replace(message=last.message + line)
    return chain


# --- JavaScript (V8) ----------------------------------------------------------------------------


def parse_javascript(text: str) -> list[ParsedException]:
    frames: list[dict[str, object]] = []
    for line in text.splitlines()[1:]:
        if not line.startswith("    at "):
            continue
        body = line[7:]
        open_paren = body.find("(")
        if open_paren >= 0:
            if not body.endswith(")"):
                continue
            label, location = body[:open_paren].strip(), body[open_paren + 1 : -1]
        else:
            label, location = "", body
        parts = location.rsplit(":", 2)
        if len(parts) == 3 and parts[1].isdigit():
            path, number = parts[0], int(parts[1])
        elif len(parts) >= 2 and parts[-1].isdigit():
            path, number = ":".join(parts[:-1]), int(parts[-1])
        else:
            path, number = ("native" if "native" in location else location), 0
        if path or label or number:
            frames.append(_frame(path, number, label))
    return [ParsedException("", "", frames)]


# --- .NET ---------------------------------------------------------------------------------------


def parse_dotnet(text: str) -> list[ParsedException]:
    frames: list[dict[str, object]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("at "):
            continue
        body = line[3:]
        label, sep, location = body.partition(" in ")
        if sep:
            path, _, number = location.rpartition(":")
            if number.startswith("line "):
                number = number[5:]
            frames.append(_frame(path, _int(number), label))
        elif ")" in body:
            frames.append(_frame("", 0, body[: body.rindex(")") + 1]))
    return [ParsedException("", "", frames)]


# --- Go -----------------------------------------------------------------------------------------

_GO_GOROUTINE = re.compile(r"^goroutine .*\[.*\]:$")
_GO_LOCATION = re.compile(r"([^\s:]+):(\d+)")


def parse_go(text: str) -> list[ParsedException]:
    frames: list[dict[str, object]] = []
    path, number = "", 0
    label: str | None = None
    for raw in text.splitlines()[1:]:
        line = raw.strip()
        if not line or _GO_GOROUTINE.match(line):
            continue
        if label is None:
            label = line
            continue
        match = _GO_LOCATION.search(line)
        if match:
            path, number = match.group(1), int(match.group(2))
        frames.append(_frame(path, number, label))
        label = None
    return [ParsedException("", "", frames)]


PARSERS: dict[str, Callable[[str], list[ParsedException]]] = {
    "python": parse_python,
    "java": parse_java,
    "php": parse_java,
    "javascript": parse_javascript,
    "nodejs": parse_javascript,
    "webjs": parse_javascript,
    "dotnet": parse_dotnet,
    "go": parse_go,
}


def parser_for(language: str, text: str) -> Callable[[str], list[ParsedException]] | None:
    """The parser for the resource's ``telemetry.sdk.language``; Python tracebacks are also
    recognised by their header when the resource does not say."""
    parser = PARSERS.get(language)
    if parser is None and text.startswith("Traceback (most recent call last):"):
        return parse_python
    return parser
