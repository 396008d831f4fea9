"""Exact chunk lists for one fixture file per language (fixtures/languages/).

The expectations live in fixtures/languages/expected.json as
{file: [[symbol, kind, start_line, end_line], ...]}. After a deliberate change
to the chunker, regenerate with `python tests/test_chunk_fixtures.py` and review
the diff line by line: every entry is a claim about what a search hit is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from codesearch.source.chunk import Chunk, ChunkBudget, chunk_file
from codesearch.source.languages import CODE_LANGUAGES, detect_language

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "languages"
EXPECTED = FIXTURES / "expected.json"
# A small budget so every fixture shows a split class and merged one-liners.
BUDGET = ChunkBudget(max_tokens=128, min_tokens=16)


def fixture_files() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.is_file() and detect_language(p.name))


def chunks_of(path: Path) -> list[Chunk]:
    text = path.read_text(encoding="utf-8")
    return chunk_file(path.name, text, detect_language(path.name, text.split("\n", 1)[0]), BUDGET)


def summary(chunks: list[Chunk]) -> list[list[object]]:
    return [[c.symbol, c.kind, c.start_line, c.end_line] for c in chunks]


def test_one_fixture_per_language() -> None:
    covered = {detect_language(p.name) for p in fixture_files()}
    assert set(CODE_LANGUAGES) | {"markdown", "rst"} <= covered
    assert len(CODE_LANGUAGES) == 20


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_fixture_chunks_exact(path: Path) -> None:
    expected = json.loads(EXPECTED.read_text())
    assert summary(chunks_of(path)) == expected[path.name]


def regenerate() -> None:
    data = {p.name: summary(chunks_of(p)) for p in fixture_files()}
    lines = ["{"]
    for i, (name, rows) in enumerate(data.items()):
        lines.append(f"  {json.dumps(name)}: [")
        lines += [f"    {json.dumps(r)}{',' if j < len(rows) - 1 else ''}" for j, r in enumerate(rows)]
        lines.append("  ]" + ("," if i < len(data) - 1 else ""))
    lines.append("}")
    EXPECTED.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    regenerate()
    sys.exit(0)
