"""Which language a file is written in, by extension or shebang.

Owned by the chunker work (issue 3), which extends this with per-language
chunking tables.
"""

from __future__ import annotations

from pathlib import PurePosixPath

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".md": "markdown", ".markdown": "markdown", ".rst": "rst",
}

SHEBANGS: dict[str, str] = {"python": "python", "node": "javascript", "bash": "bash", "sh": "bash"}


def detect_language(path: str, head: str = "") -> str | None:
    """Language name for a path; `head` is the file's first line, for shebangs."""
    lang = EXTENSIONS.get(PurePosixPath(path).suffix.lower())
    if lang is not None:
        return lang
    if head.startswith("#!"):
        words = head[2:].replace("/usr/bin/env", " ").split()
        if words:
            interpreter = PurePosixPath(words[0]).name.rstrip("0123456789.")
            return SHEBANGS.get(interpreter)
    return None
