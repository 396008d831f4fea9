"""Print the definitions of a corpus with their spans, to label benchmark queries.

    python bench/outline.py jsoup                 # every file of bench/.corpora/jsoup
    python bench/outline.py jsoup src/main/java/org/jsoup/Jsoup.java

One line a definition: `path:start-end kind symbol`. Containers are listed with their
members (a tiny chunk budget splits every class into its methods), so the spans are the
ones a query target should name. A container's span runs from its first to its last member
(Rust: every `impl` of the type counts), so check a container's span by reading the file. A reading aid for whoever writes queries: read the
code first, write the query, then take its target's span from here.
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path

from codesearch.source.chunk import ChunkBudget, chunk_file
from codesearch.source.discover import discover, read_text

CORPORA = Path(__file__).resolve().parent / ".corpora"


def outline(root: Path, only: set[str]) -> None:
    tiny = ChunkBudget(max_tokens=8, min_tokens=1)
    for source in discover(root):
        if only and source.path not in only:
            continue
        try:
            text, _ = read_text(source)
        except OSError:
            continue
        spans: dict[str, list[int]] = {}
        kinds: dict[str, str] = {}
        for chunk in chunk_file(source.path, text, source.language, tiny):
            if not chunk.symbol:
                continue
            kinds.setdefault(chunk.symbol, chunk.kind)
            # A definition is its parts joined; a container spans all of its members.
            for name in _self_and_parents(chunk.symbol):
                span = spans.setdefault(name, [chunk.start_line, chunk.end_line])
                span[0], span[1] = min(span[0], chunk.start_line), max(span[1], chunk.end_line)
        for name, (start, end) in sorted(spans.items(), key=lambda kv: (kv[1][0], -kv[1][1])):
            print(f"{source.path}:{start}-{end} {kinds.get(name, 'container')} {name}")


def _self_and_parents(symbol: str) -> list[str]:
    """`A.B.c` -> [`A`, `A.B`, `A.B.c`] (also with `::`)."""
    cuts = [m.start() for m in re.finditer(r"\.|::", symbol)]
    return [symbol[:cut] for cut in cuts] + [symbol]


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    root = CORPORA / sys.argv[1]
    if not root.is_dir():
        print(f"error: no corpus at {root}: run bench/prepare_corpora.py", file=sys.stderr)
        return 1
    with contextlib.suppress(BrokenPipeError):  # piped into head
        outline(root, set(sys.argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
