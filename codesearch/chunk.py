"""Split a source file into chunks: one function, method or class each.

Owned by the chunker work (issue 3). `chunk_file` is the narrow interface the
indexer uses; everything else here is an implementation detail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Chunk:
    """One searchable unit of code: a definition, a module block or a line window."""

    path: str  # posix path relative to the index root
    language: str  # e.g. "python"; "text" for files without a grammar
    symbol: str  # qualified name, "Class.method"; "" for module/window chunks
    kind: str  # function | method | class | struct | enum | interface | impl | module | window | section ...
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str  # exact source text of the lines start_line..end_line
    content_type: str = "code"  # "code" or "docs"


def approx_tokens(text: str) -> int:
    """Cheap token estimate (about 4 characters a token for code)."""
    return max(1, len(text) // 4)


@dataclass(frozen=True)
class ChunkBudget:
    """Size limits in tokens of the active model."""

    max_tokens: int = 256
    min_tokens: int = 16
    count_tokens: Callable[[str], int] = field(default=approx_tokens)


def chunk_file(
    path: str, text: str, language: str | None, budget: ChunkBudget | None = None
) -> list[Chunk]:
    """Chunks of one file. Placeholder: fixed line windows until the tree-sitter chunker lands."""
    return window_chunks(path, text, language or "text")


def window_chunks(
    path: str, text: str, language: str, window: int = 40, overlap: int = 5
) -> list[Chunk]:
    lines = text.splitlines()
    chunks: list[Chunk] = []
    start = 0
    while start < len(lines):
        end = min(len(lines), start + window)
        body = "\n".join(lines[start:end])
        if body.strip():
            chunks.append(Chunk(path, language, "", "window", start + 1, end, body))
        if end == len(lines):
            break
        start = end - overlap
    return chunks
