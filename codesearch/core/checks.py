"""Arguments checked before anything runs: a bad one is one line naming what is allowed,
never a silent empty answer (an unknown language or a glob that cannot match filter
everything out) and never a traceback deep in a tokenizer."""

from __future__ import annotations

from codesearch.core.text import decode_bytes
from codesearch.core.types import CONTENT_TYPES, MODES, SearchOptions


def clean_query(text: str) -> str:
    """The query as text: bytes that were not UTF-8 (Python keeps them as lone surrogates
    in argv) are read as indexed files read them (core.text); a blank query is refused."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # surrogates that no undecodable byte made
            raw = text.encode("utf-8", "replace")
        text, _ = decode_bytes(raw)
    text = text.replace("\0", " ")
    if not text.strip():
        raise ValueError("the query is empty: say what you are looking for, in words or as a symbol name")
    return text


def check_glob(glob: str) -> None:
    """A `--path` glob must mean something: not blank, and every `[` closed."""
    if not glob.strip():
        raise ValueError("--path is empty: give a glob such as 'src/*' or leave the option out")
    i = 0
    while i < len(glob):
        if glob[i] == "[":
            # fnmatch: a `]` right after `[` or `[!` belongs to the set.
            j = i + 1
            if j < len(glob) and glob[j] == "!":
                j += 1
            if j < len(glob) and glob[j] == "]":
                j += 1
            close = glob.find("]", j)
            if close < 0:
                raise ValueError(f"bad --path glob {glob!r}: the '[' at position {i + 1} is never "
                                 "closed (match a literal bracket with '[[]')")
            i = close
        i += 1


def check_search_options(options: SearchOptions) -> None:
    """Everything but the languages (their names live with the grammars, source.languages)."""
    if options.mode not in MODES:
        raise ValueError(f"unknown mode '{options.mode}': choose one of {', '.join(MODES)}")
    if options.content not in CONTENT_TYPES:
        raise ValueError(f"unknown content '{options.content}': choose one of {', '.join(CONTENT_TYPES)}")
    for name, value in (("-k", options.k), ("candidates", options.candidates),
                        ("--rerank-top", options.rerank_top)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be at least 1, not {value!r}")
    if isinstance(options.per_file, bool) or not isinstance(options.per_file, int) or options.per_file < 0:
        raise ValueError(f"--per-file must be 0 (no limit) or more, not {options.per_file!r}")
    if options.path_glob is not None:
        check_glob(options.path_glob)
