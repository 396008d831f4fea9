"""Print search results for people (rich) and for scripts (JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from rich.console import Console, Group
from rich.syntax import Syntax
from rich.text import Text

from codesearch.core.tokens import query_words
from codesearch.core.types import Hit, SearchResult

JSON_SCHEMA_VERSION = 1

# tree-sitter language names that Pygments spells differently.
_LEXERS = {"tsx": "tsx", "csharp": "csharp", "cpp": "cpp", "bash": "bash", "text": "text"}


def result_to_json(result: SearchResult, index_dir: str, model: str, lines: int | None = None) -> dict[str, Any]:
    hits = []
    for hit in result.hits:
        item = asdict(hit)
        item["snippet"] = _snippet_lines(hit, lines) if lines else hit.text
        del item["text"]
        if not item["repo"]:  # a local index: the schema stays as it was
            del item["repo"]
        hits.append(item)
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "query": result.query,
        "mode": result.mode,
        "index": index_dir,
        "model": model,
        "chunks": result.chunks,
        "vectors_pending": result.vectors_pending,
        "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
        "results": hits,
    }


def result_from_json(data: dict[str, Any]) -> SearchResult:
    """Rebuild a result sent by the query server."""
    names = set(Hit.__dataclass_fields__)
    hits = []
    for item in data["results"]:
        values = {k: v for k, v in item.items() if k in names}
        values["text"] = item.get("snippet", "")
        hits.append(Hit(**values))
    return SearchResult(data["query"], data["mode"], hits, data["chunks"],
                        data["vectors_pending"], data.get("timings_ms", {}))


def print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _snippet_start(hit: Hit) -> int:
    """First line shown: where the matching part of the definition begins."""
    return hit.match_start_line if hit.start_line < hit.match_start_line <= hit.end_line else hit.start_line


def _snippet_lines(hit: Hit, lines: int | None) -> str:
    if not lines:
        return hit.text
    skip = _snippet_start(hit) - hit.start_line
    return "\n".join(hit.text.splitlines()[skip : skip + lines])


def _matching_lines(hit: Hit, words: list[str], shown: int) -> set[int]:
    marked = set()
    first = _snippet_start(hit)
    for offset, line in enumerate(_snippet_lines(hit, shown).splitlines()):
        lowered = line.lower()
        if any(w in lowered for w in words):
            marked.add(first + offset)
    return marked


def render_hits(console: Console, result: SearchResult, lines: int) -> None:
    if not result.hits:
        console.print(f"no results for [bold]{result.query}[/]")
        return
    words = query_words(result.query)
    for hit in result.hits:
        header = Text()
        header.append(f"{hit.rank:>2}  ", style="bold")
        if hit.repo:
            header.append(f"{hit.repo}:", style="bold green")
        header.append(f"{hit.path}:{hit.start_line}-{hit.end_line}", style="bold cyan")
        if hit.symbol:
            header.append(f"  {hit.symbol}", style="bold yellow")
        header.append(f"  {hit.kind}", style="dim")
        header.append(f"  {hit.score:.4f}", style="dim")
        if hit.rerank_score is not None:
            header.append(f"  rerank {hit.rerank_score:.3f}", style="magenta")
        snippet = _snippet_lines(hit, lines)
        syntax = Syntax(
            snippet, _LEXERS.get(hit.language, hit.language), line_numbers=True,
            start_line=_snippet_start(hit), word_wrap=False, background_color="default",
            highlight_lines=_matching_lines(hit, words, lines),
        )
        console.print(Group(header, syntax))
        console.print()
    if result.vectors_pending:
        console.print(
            f"[dim]{result.vectors_pending} of {result.chunks} chunks not embedded yet: "
            "results are partly lexical until `codesearch index` finishes[/]"
        )
