"""Print search results for people (rich) and for scripts (JSON)."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import Any

from rich.console import Console, Group
from rich.syntax import Syntax
from rich.text import Text

from codesearch.core.tokens import query_words
from codesearch.core.types import Hit, SearchResult
from codesearch.core.wire import TERMINAL_ENV

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


def json_text(data: dict[str, Any]) -> str:
    """`codesearch query --json` output, newline included."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def print_json(data: dict[str, Any]) -> None:
    print(json_text(data), end="")


EMPTY_INDEX = "the index is empty: no source files were found when it was built"


def render_answer(console: Console, data: dict[str, Any], lines: int) -> None:
    """`codesearch query` output for people, from a result as `result_to_json` made it."""
    result = result_from_json(data)
    if result.chunks == 0:
        console.print(EMPTY_INDEX)
        return
    render_hits(console, result, lines)


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


def printable(text: str) -> str:
    """`text` safe on one terminal line: control characters (a newline in a file name, an
    escape sequence) shown as escapes. Text output only: JSON keeps names exact."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def _escape_char(ch: str) -> str:
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if ch in named:
        return named[ch]
    import unicodedata

    code = ord(ch)
    if unicodedata.category(ch) == "Zs":
        return ch  # non-breaking and other wide spaces print as spaces (not line separators)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def render_hits(console: Console, result: SearchResult, lines: int) -> None:
    if not result.hits:
        message = Text("no results for ")
        message.append(printable(result.query), style="bold")
        console.print(message)
        return
    words = query_words(result.query)
    for hit in result.hits:
        header = Text()
        header.append(f"{hit.rank:>2}  ", style="bold")
        if hit.repo:
            header.append(f"{printable(hit.repo)}:", style="bold green")
        header.append(f"{printable(hit.path)}:{hit.start_line}-{hit.end_line}", style="bold cyan")
        if hit.symbol:
            header.append(f"  {printable(hit.symbol)}", style="bold yellow")
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


class _ClientFile(io.StringIO):
    """Collects output, answering `isatty` and `encoding` as the client's stdout would."""

    def __init__(self, isatty: bool, encoding: str):
        super().__init__()
        self._isatty = isatty
        self._encoding = encoding

    def isatty(self) -> bool:
        return self._isatty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


def client_console(terminal: dict[str, Any]) -> tuple[Console, _ClientFile]:
    """The Console that `Console()` would be in the client process described by `terminal`
    (cli/thin.py collects it: stdout's isatty and encoding, the first terminal size of
    stdin/stdout/stderr, TERMINAL_ENV), writing into a buffer instead."""
    environ = {k: str(v) for k, v in dict(terminal.get("environ") or {}).items() if k in TERMINAL_ENV}
    out = _ClientFile(bool(terminal.get("isatty")), str(terminal.get("encoding") or "utf-8"))
    console = Console(file=out, _environ=environ, force_jupyter=False, legacy_windows=False)
    console.size = _client_size(console, environ, terminal.get("size"))
    return console, out


def _client_size(console: Console, environ: dict[str, str], size: Any) -> tuple[int, int]:
    """rich's Console.size, with the client's terminal size for the one it would measure."""
    columns, lines = environ.get("COLUMNS", ""), environ.get("LINES", "")
    if columns.isdigit() and lines.isdigit():
        return int(columns), int(lines)
    if console.is_dumb_terminal:
        return 80, 25
    width, height = (int(size[0]), int(size[1])) if size else (0, 0)
    if columns.isdigit():
        width = int(columns)
    if lines.isdigit():
        height = int(lines)
    return width or 80, height or 25


def answer_text(data: dict[str, Any], lines: int, as_json: bool, terminal: dict[str, Any]) -> str:
    """Exactly what `codesearch query` prints to the client's stdout for this result."""
    if as_json:
        return json_text(data)
    console, out = client_console(terminal)
    render_answer(console, data, lines)
    return out.getvalue()
