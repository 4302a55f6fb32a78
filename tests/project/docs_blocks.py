"""The code blocks a user would copy from the documentation, found the way a reader sees them.

A block is a fenced code block (```lang) in one of ``DOC_FILES``. Shell and Python blocks (and
blocks without a language, which could be either) are commands: each must be run by a test or
carry the line ``<!-- illustrative -->`` directly before its fence. Other languages (json, yaml,
text, ...) show data and are not commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ILLUSTRATIVE = "<!-- illustrative -->"
COMMAND_LANGUAGES = {
    "",
    "sh",
    "shell",
    "bash",
    "console",
    "zsh",
    "python",
    "py",
    "python3",
    "pycon",
}
PYTHON_LANGUAGES = {"python", "py", "python3", "pycon"}
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<lang>[^\s`{]*)")


def doc_files() -> list[Path]:
    """README.md, docs/*.md, every README under examples/, and the otelcol README."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    files += sorted((ROOT / "examples").rglob("README.md"))
    files.append(ROOT / "collector" / "otelcol" / "README.md")
    return files


@dataclass(frozen=True)
class Block:
    file: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    illustrative: bool

    @property
    def key(self) -> tuple[str, str]:
        """How the registry names a block: its file and its first non-empty line."""
        first = next((line.strip() for line in self.text.splitlines() if line.strip()), "")
        return (self.file, first)

    @property
    def is_command(self) -> bool:
        return self.language in COMMAND_LANGUAGES

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def commands(self) -> list[str]:
        """Shell commands, one per logical line (backslash continuations joined, comments and
        trailing comments dropped)."""
        joined = re.sub(r"\\\n\s*", " ", self.text)
        commands = []
        for line in joined.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
        return commands


def parse(path: Path, root: Path = ROOT) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence = match.group("fence")
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        previous = lines[index - 1].strip() if index else ""
        blocks.append(
            Block(
                file=path.relative_to(root).as_posix(),
                line=index + 1,
                language=match.group("lang").lower(),
                text="\n".join(lines[index + 1 : end]) + "\n",
                illustrative=previous == ILLUSTRATIVE,
            )
        )
        index = end + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for path in doc_files() for block in parse(path)]


def matches(b: Block, key: tuple[str, str]) -> bool:
    """Whether ``key`` (file, start of the first non-empty line) names this runnable block."""
    return not b.illustrative and b.file == key[0] and b.key[1].startswith(key[1])


def block(file: str, start: str) -> Block:
    """The one runnable block of ``file`` whose first non-empty line starts with ``start``."""
    found = [b for b in all_blocks() if matches(b, (file, start))]
    assert len(found) == 1, f"{file}: {len(found)} runnable blocks start with {start!r}"
    return found[0]
