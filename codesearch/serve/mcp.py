"""`codesearch mcp`: the Model Context Protocol server coding agents call (docs/mcp.md).

One process serves one or more indexed folders ("roots") over stdio and searches
in-process through `codesearch.api.Index`; it starts no warm query server.

Never stale: before each answer a root compares its files with what the index last
saw (one `stat` per indexed file, and a walk of the tree only when a folder's mtime
says a file was added), re-indexes what changed into the full-text tier at once and
leaves the vectors to a background thread, which the next change cancels. A folder
without an index is indexed on first use, full-text tier first.

Token budget: an answer's size is counted as CHARS_PER_TOKEN characters of its JSON
per token. Hits that do not fit whole are cut to their signature plus the lines that
matched the query; hits that do not fit at all are left out, counted, and reachable
with `next_cursor`.

Nothing but protocol goes to stdout: while it serves, the SDK's stdio transport points
file descriptor 1 at stderr (children and native libraries included), and this module
logs to stderr only.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field, ValidationError

from codesearch.api import Hit, Index, IndexOptions, SearchOptions
from codesearch.core.errors import USER_ERRORS, CodesearchError, LockTimeout, one_line
from codesearch.core.tokens import lexical_text
from codesearch.core.version import VERSION

log = logging.getLogger("codesearch.mcp")

# The budget rule, stated in every answer's schema: 4 characters of the answer's JSON
# count as one token (English text and code average 3.5-4.5 characters per token in
# the BPE tokenizers agents use; JSON escapes make code a little longer, not shorter).
CHARS_PER_TOKEN = 4
MAX_K = 100
MAX_RESULTS = 1000  # cursor offset + k: deeper pages are noise
MIN_TOKENS, MAX_TOKENS = 100, 100_000
MIN_SNIPPET = 100  # characters a cut hit keeps at least (its signature, clipped)
MAX_LINE = 240  # a cut snippet clips longer lines (minified code)
MAX_SIGNATURE_LINES = 8
NOTE_RESERVE = 400  # characters of an answer's note, at most
NOTE_RESERVE_SENTENCES = 100  # what the budget keeps free for the sentences about cut hits
REFERENCE_SHARE = 0.25  # of find_symbol's budget, at most, for references
MAX_REFERENCES = 20
SPAN_DEFAULT_TOKENS = 8000
SPAN_MAX_FILE_BYTES = 20_000_000
# A search waits this long for the index lock another process holds (a `codesearch
# index` in a terminal, a git hook) before answering from the index as it is.
FOREGROUND_LOCK_SECONDS = 15.0
STOP_EMBEDDING_SECONDS = 30.0  # wait for the background embedder to reach a batch edge
EMBED_BATCH = 16  # small batches: a change cancels the background embedder sooner
PRIVATE_DIRS = frozenset({".git", ".codesearch"})
# Imported by one thread before any tool runs: two threads importing lancedb at once can
# see it half-initialised ("partially initialized module ... circular import").
PRELOAD = ("pyarrow", "lancedb", "codesearch.index.build", "codesearch.index.rows",
           "codesearch.search.searcher", "codesearch.embed.local", "codesearch.embed.onnx",
           "onnxruntime", "tokenizers")
READY_SECONDS = 300.0

Mode = Literal["hybrid", "text", "vector"]
Content = Literal["code", "docs", "all"]


# --- answers ------------------------------------------------------------------------


class SearchHit(BaseModel):
    root: str = Field(description="Name of the root the hit is in (index_status lists them).")
    path: str = Field(description="File path relative to the root.")
    start_line: int = Field(description="First line of the definition (1-based).")
    end_line: int = Field(description="Last line of the definition.")
    symbol: str = Field(description="Qualified name of the definition ('' for module-level code).")
    kind: str = Field(description="function, method, class, struct, module, section, ...")
    language: str
    score: float
    snippet: str = Field(description="The definition's code. When `cut`, only its signature and "
                         "the lines that matched, with '[... lines A-B not shown ...]' markers.")
    cut: bool = Field(description="The snippet was shortened to fit max_tokens; read_span gives "
                      "the whole definition.")


class SearchAnswer(BaseModel):
    query: str
    mode: str
    hits: list[SearchHit] = Field(description="Best first.")
    omitted: int = Field(description="Hits of this page left out to stay within max_tokens.")
    cut: int = Field(description="Hits whose snippet was cut to signature + matching lines.")
    next_cursor: str | None = Field(description="Pass as `cursor` (same query and filters) for "
                                    "the next hits; null when there are no more.")
    tokens: int = Field(description=f"Size of this answer: its JSON characters / {CHARS_PER_TOKEN}.")
    max_tokens: int
    vectors_pending: int = Field(description="Chunks not embedded yet: found by words only.")
    reindexed_files: int = Field(description="Files changed on disk and re-indexed before answering.")
    note: str | None = None


class Definition(SearchHit):
    match: Literal["exact", "case", "name"] = Field(
        description="exact: the (qualified) name as given; case: the same ignoring case; "
        "name: only the last part matches (listed when nothing better exists).")


class Reference(BaseModel):
    root: str
    path: str
    line: int
    language: str
    symbol: str = Field(description="The definition the line is in.")
    text: str


class SymbolAnswer(BaseModel):
    name: str
    definitions: list[Definition] = Field(description="Best match first.")
    references: list[Reference] = Field(description="Lines that use the name (from the full-text "
                                        "index, checked word for word), after the definitions.")
    omitted: int = Field(description="Definitions left out to stay within max_tokens.")
    tokens: int
    max_tokens: int
    reindexed_files: int
    note: str | None = None


class Span(BaseModel):
    root: str
    path: str
    start_line: int
    end_line: int = Field(description="Last line returned.")
    total_lines: int
    text: str
    truncated: bool = Field(description="Stopped before end_line to stay within max_tokens.")
    next_start_line: int | None = Field(description="Where to continue when truncated.")


class RootStatus(BaseModel):
    root: str
    path: str
    indexed: bool
    model: str | None
    files: int
    chunks: int
    vectors_pending: int
    embedding: bool = Field(description="Vectors are being computed in the background.")
    last_indexed: str | None = Field(description="Local time of the last index run (ISO 8601).")
    changed_since: int | None = Field(description="Files changed on disk since then (the next "
                                      "search re-indexes them first).")
    error: str | None = Field(description="The last background failure, if any.")


class StatusAnswer(BaseModel):
    server_version: str
    roots: list[RootStatus]


class ReindexedRoot(BaseModel):
    root: str
    files: int
    files_changed: int
    files_deleted: int
    chunks: int
    vectors_pending: int
    embedding_started: bool
    seconds: float


class ReindexAnswer(BaseModel):
    roots: list[ReindexedRoot]


# --- budgets and snippets -------------------------------------------------------------


def json_chars(text: str) -> int:
    """Characters `text` takes as a JSON string's content (escapes included)."""
    return len(json.dumps(text, ensure_ascii=False)) - 2


def answer_tokens(answer: BaseModel) -> int:
    return -(-len(answer.model_dump_json()) // CHARS_PER_TOKEN)


def count_tokens(answer: SearchAnswer | SymbolAnswer) -> None:
    """Set `answer.tokens` to the size of the answer holding that very number."""
    for _ in range(3):  # the number's own digits can move it once
        tokens = answer_tokens(answer)
        if tokens == answer.tokens:
            return
        answer.tokens = tokens


def query_terms(query: str) -> frozenset[str]:
    """The query's words as the full-text index stores them (split, stemmed)."""
    return frozenset(lexical_text(query).split())


def _is_comment(line: str) -> bool:
    s = line.strip()
    if s.startswith("#"):
        return len(s) == 1 or s[1] in " #!"  # `#[derive]`, `#define` are code
    return s.startswith(("//", "/*", "*", "--", ";;", '"""', "'''", "<!--", "(*"))


def signature_lines(lines: Sequence[str]) -> list[int]:
    """Indexes of the signature: the first line of code (after comments), its
    decorators or attributes, and its continuation lines while brackets are open."""
    start = next((i for i, line in enumerate(lines) if line.strip() and not _is_comment(line)), 0)
    kept: list[int] = []
    depth = 0
    for i in range(start, min(len(lines), start + MAX_SIGNATURE_LINES)):
        kept.append(i)
        s = lines[i].strip()
        depth += s.count("(") + s.count("[") - s.count(")") - s.count("]")
        if depth <= 0 and not s.startswith(("@", "#[")):
            break
    return kept


def _matching_lines(lines: Sequence[str], terms: frozenset[str], focus: tuple[int, int],
                    skip: set[int]) -> list[int]:
    """Lines holding query words, most words first (the part that matched before the
    rest); without any, the first lines of the part that matched."""
    scored = []
    for i, line in enumerate(lines):
        if i in skip or not line.strip():
            continue
        found = len(terms.intersection(lexical_text(line).split())) if terms else 0
        if found:
            scored.append((-found, not focus[0] <= i <= focus[1], i))
    scored.sort()
    ranked = [i for *_, i in scored]
    if not ranked:
        ranked = [i for i in range(max(0, focus[0]), min(len(lines), focus[1] + 1))
                  if i not in skip and lines[i].strip()]
    return ranked[:60]


def _gap(first: int, last: int) -> str:
    return f"[... line {first} not shown ...]" if first == last else f"[... lines {first}-{last} not shown ...]"


def _clip(line: str, limit: int = MAX_LINE) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _pieces(count: int, keep: Sequence[int], first_line: int) -> list[int | str]:
    """The kept line indexes in order, with a gap marker for each run left out."""
    out: list[int | str] = []
    previous = -1
    for i in keep:
        if i > previous + 1:
            out.append(_gap(first_line + previous + 1, first_line + i - 1))
        out.append(i)
        previous = i
    if previous < count - 1:
        out.append(_gap(first_line + previous + 1, first_line + count - 1))
    return out


def cut_snippet(text: str, first_line: int, terms: frozenset[str], focus: tuple[int, int],
                cap: int) -> str:
    """`text` (a definition starting at `first_line`) in at most `cap` JSON characters:
    its signature, then the lines that matched the query, then their neighbours.
    `focus` is the matched part, as line numbers."""
    lines = text.split("\n")

    def between(before: int, after: int) -> int:
        """JSON characters of the gap marker (and its newline) between two kept lines."""
        if after - before < 2:
            return 0
        return len(_gap(first_line + before + 1, first_line + after - 1)) + 2

    keep = signature_lines(lines)
    # Each piece costs its characters plus a two-character "\n"; the last has none.
    size = sum(json_chars(_clip(lines[i])) + 2 for i in keep) - 2
    size += sum(between(a, b) for a, b in zip([-1, *keep], [*keep, len(lines)], strict=True))
    if size > cap:  # even the signature is too long: clip it
        rendered = _render(lines, keep, first_line)
        low, high = 0, min(len(rendered), cap)
        while low < high:  # the longest prefix that fits with its ellipsis
            mid = (low + high + 1) // 2
            low, high = (mid, high) if json_chars(rendered[:mid]) <= cap - 1 else (low, mid - 1)
        return rendered[:low] + "…"
    ranked = _matching_lines(lines, terms, (focus[0] - first_line, focus[1] - first_line), set(keep))
    neighbours = [j for i in ranked for j in (i - 1, i + 1) if 0 <= j < len(lines)]
    for i in [*ranked, *neighbours]:
        at = bisect.bisect_left(keep, i)
        if at < len(keep) and keep[at] == i:
            continue
        before = keep[at - 1] if at else -1
        after = keep[at] if at < len(keep) else len(lines)
        grown = (size + json_chars(_clip(lines[i])) + 2 + between(before, i) + between(i, after)
                 - between(before, after))
        if grown <= cap:
            keep.insert(at, i)
            size = grown
    return _render(lines, keep, first_line)


def _render(lines: Sequence[str], keep: Sequence[int], first_line: int) -> str:
    return "\n".join(p if isinstance(p, str) else _clip(lines[p])
                     for p in _pieces(len(lines), keep, first_line))


def water_level(sizes: Sequence[int], room: int) -> int:
    """The largest cap with sum(min(size, cap)) <= room (every size fits: the largest)."""
    left = room
    ordered = sorted(sizes)
    for n, size in enumerate(ordered):
        share = left // (len(ordered) - n)
        if size > share:
            return share
        left -= size
    return ordered[-1] if ordered else room


@dataclass
class Entry:
    """One hit before its snippet is sized: the whole definition and what matched."""

    hit: SearchHit
    text: str
    focus: tuple[int, int]
    terms: frozenset[str]

    def meta_chars(self) -> int:
        return len(self.hit.model_copy(update={"snippet": ""}).model_dump_json()) + 1  # + comma

    def full_chars(self) -> int:
        return json_chars(self.text)

    def render(self, cap: int) -> SearchHit:
        if json_chars(self.text) <= cap:
            return self.hit.model_copy(update={"snippet": self.text, "cut": False})
        snippet = cut_snippet(self.text, self.hit.start_line, self.terms, self.focus, cap)
        return self.hit.model_copy(update={"snippet": snippet, "cut": True})


def fit(entries: Sequence[Entry], room: int) -> list[SearchHit]:
    """As many leading entries as fit in `room` characters, snippets cut evenly (water
    filling: short ones stay whole, long ones share what is left)."""
    metas = [e.meta_chars() for e in entries]
    fulls = [e.full_chars() for e in entries]
    for n in range(len(entries), 0, -1):
        left = room - sum(metas[:n])
        if sum(min(size, MIN_SNIPPET) for size in fulls[:n]) > left:
            continue
        cap = max(water_level(fulls[:n], left), 1)
        return [e.render(cap) for e in entries[:n]]
    return []


def cursor_key(*parts: object) -> str:
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=4).hexdigest()


def read_cursor(cursor: str, key: str) -> int:
    offset, _, owner = cursor.partition(".")
    if not offset.isdigit() or owner != key:
        raise ToolError("this cursor belongs to another search: repeat the same query and filters "
                        "with it, or leave it out to start from the first hit")
    return int(offset)


# --- one served folder --------------------------------------------------------------


class _Cancelled(Exception):
    """The background embedder stops: a file changed, or the server exits."""


class _CancellableProgress:
    """The indexer's progress reports, used as the points where a run may stop."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel

    def _check(self) -> None:
        if self.cancel.is_set():
            raise _Cancelled

    def start(self, stage: str, total: int | None) -> None:
        self._check()

    def advance(self, stage: str, amount: int = 1) -> None:
        self._check()

    def finish(self, stage: str) -> None:
        pass

    def message(self, text: str) -> None:
        log.info("%s", text)
        self._check()


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _unsafe_to_index(path: Path) -> bool:
    """A server started in the wrong place (an IDE's working directory) must not index
    a home folder or a whole disk."""
    return path.parent == path or path == Path.home().resolve()


class Models:
    """Loaded embedding models by index fingerprint: roots built with the same model
    share one copy, loaded by one thread at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_fingerprint: dict[str, Any] = {}


class Root:
    """One served folder: its index, what that index last saw, the background embedder."""

    def __init__(self, name: str, path: Path, models: Models | None = None) -> None:
        self.name, self.path = name, path
        self.models = models or Models()
        self.index = Index(path)
        self._update = threading.Lock()  # one foreground update at a time
        self._files: dict[str, tuple[int, int]] | None = None
        self._checks: list[tuple[str, str, tuple[int, int]]] = []  # (path, full path, state)
        self._dir_names: list[str] = []
        self._dirs: dict[str, int | None] | None = None  # None: walk before trusting them
        self._worker: threading.Thread | None = None
        self._cancel = threading.Event()
        self.error: str | None = None

    @property
    def embedding(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    # --- freshness ---------------------------------------------------------------

    def refresh(self) -> int:
        """Bring the full-text tier up to the files on disk; returns how many files changed."""
        with self._update:
            if not self.index.exists:
                return self._first_build()
            changed = self._changed()
            if changed is None or changed:
                return self._lexical(changed)
            if not self.embedding and self.error is None and self._vectors_missing():
                self._start_embedding()
            return 0

    def changes(self) -> int | None:
        """Files changed on disk since the index saw them (no update); None while an
        update runs or before the first index."""
        if not self._update.acquire(timeout=0.5):
            return None
        try:
            if not self.index.exists:
                return None
            changed = self._changed()
            return None if changed is None else len(changed)
        finally:
            self._update.release()

    def reindex(self, paths: Sequence[str] | None) -> ReindexedRoot:
        with self._update:
            if not self.index.exists:
                started = time.perf_counter()
                files = self._first_build()
                manifest = self.index.manifest
                return ReindexedRoot(root=self.name, files=files, files_changed=files, files_deleted=0,
                                     chunks=manifest.chunks if manifest else 0,
                                     vectors_pending=manifest.vectors_pending if manifest else 0,
                                     embedding_started=self.embedding,
                                     seconds=round(time.perf_counter() - started, 3))
            self._stop_embedding()
            report = self._update_lexical(list(paths) if paths is not None else None)
            self._start_embedding()
            return ReindexedRoot(root=self.name, files=report.files, files_changed=report.files_changed,
                                 files_deleted=report.files_deleted, chunks=report.chunks_total,
                                 vectors_pending=report.vectors_pending,
                                 embedding_started=self.embedding,
                                 seconds=round(report.seconds_total, 3))

    def _first_build(self) -> int:
        if _unsafe_to_index(self.path):
            raise CodesearchError(f"refusing to index {self.path} as a whole: start the server "
                                  "in a project folder, or pass --root PROJECT")
        log.info("%s: no index yet, building its full-text tier", self.path)
        report = self.index.update(embed=False)
        log.info("%s: %d files, %d chunks searchable by words in %.1f s; embedding in the background",
                 self.path, report.files, report.chunks_total, report.seconds_total)
        self._load_snapshot()
        self._start_embedding()
        return report.files

    def _lexical(self, changed: list[str] | None) -> int:
        self._stop_embedding()
        report = self._update_lexical(changed)
        self._start_embedding()
        return report.files_changed + report.files_deleted

    def _update_lexical(self, paths: list[str] | None) -> Any:
        options = IndexOptions(lock_timeout=FOREGROUND_LOCK_SECONDS)
        report = self.index.update(paths=paths, embed=False, options=options)
        log.info("%s: re-indexed %d changed and %d removed files in %.2f s", self.name,
                 report.files_changed, report.files_deleted, report.seconds_total)
        self._load_snapshot()
        return report

    def _load_snapshot(self) -> None:
        files = self.index.file_states()
        if files is None:
            return  # a run in progress removed the record: keep the last one
        self._files = files
        root = str(self.path)
        self._checks = [(rel, os.path.join(root, rel), state) for rel, state in files.items()]
        names = {""}
        for rel in files:
            parts = rel.split("/")[:-1]
            names.update("/".join(parts[: n + 1]) for n in range(len(parts)))
        self._dir_names = sorted(names)
        self._dirs = None

    def _dir_mtimes(self) -> dict[str, int | None]:
        root = str(self.path)
        mtimes: dict[str, int | None] = {}
        for name in self._dir_names:
            try:
                mtimes[name] = os.stat(os.path.join(root, name)).st_mtime_ns
            except OSError:
                mtimes[name] = None
        return mtimes

    def _changed(self) -> list[str] | None:
        """Paths changed since the snapshot (None: no snapshot, walk everything).

        A stat per indexed file finds edits and removals; a new file changes its
        folder's mtime, and only then is the tree walked the way the indexer walks it.
        """
        if self._files is None:
            self._load_snapshot()
        files = self._files
        if files is None:
            return None
        changed = [rel for rel, full, state in self._checks if _stat(full) != state]
        if self._dirs is None or self._dir_mtimes() != self._dirs:
            before_walk = self._dir_mtimes()  # read first: a file added during the walk shows next time
            changed = self.index.changed_files(known=files)
            self._dirs = before_walk
        return changed

    def _vectors_missing(self) -> bool:
        manifest = self.index.manifest
        return manifest is not None and (manifest.vectors_pending > 0 or not manifest.complete)

    # --- background embedding ----------------------------------------------------

    def _start_embedding(self) -> None:
        if self.embedding or not self._vectors_missing():
            return
        self.error = None
        self._cancel = threading.Event()
        self._worker = threading.Thread(target=self._embed, args=(self._cancel,),
                                        name=f"codesearch-embed-{self.name}", daemon=True)
        self._worker.start()

    def _stop_embedding(self, wait: float = STOP_EMBEDDING_SECONDS) -> None:
        worker = self._worker
        if worker is not None and worker.is_alive():
            self._cancel.set()
            worker.join(wait)

    def _embed(self, cancel: threading.Event) -> None:
        try:
            self._share_model()
            options = IndexOptions(embed_batch=EMBED_BATCH)
            report = self.index.update(progress=_CancellableProgress(cancel), options=options)
            log.info("%s: embedded %d chunks in %.1f s", self.name, report.embedded,
                     report.seconds_total)
            self._load_snapshot()
        except _Cancelled:
            log.info("%s: background embedding stopped (a change, or the server exits)", self.name)
        except Exception as err:  # noqa: BLE001 (shown by index_status; the server keeps serving)
            self.error = one_line(err)
            log.warning("%s: background embedding failed: %s", self.name, self.error)

    def _share_model(self) -> None:
        """One copy of the model embeds the queries and the chunks of every root built
        with it. A vector query loads it under the index's own lock, so a search running
        at the same time waits for this copy instead of loading a second one."""
        manifest = self.index.manifest
        if manifest is None:
            return
        with self.models.lock:
            model = self.models.by_fingerprint.get(manifest.fingerprint)
            if model is None:
                self.index.run("warm up", SearchOptions(mode="vector", k=1))
                # No vector stored yet: the query skipped the model, and so will searches
                # until this copy is lent.
                searcher = self.index.searcher()
                model = searcher.loaded_embedder or searcher.embedder()
                self.models.by_fingerprint[manifest.fingerprint] = model
        self.index.lend_embedder(model)

    def prepare(self) -> None:
        """At start-up: index or catch up, then load what the first query needs."""
        try:
            self.refresh()
            self._share_model()
            self.index.warm()
        except Exception as err:  # noqa: BLE001 (the first tool call reports it)
            self.error = one_line(err)
            log.warning("%s: %s", self.name, self.error)

    def close(self) -> None:
        self._cancel.set()
        if self._worker is not None:
            self._worker.join(5.0)


class Workspace:
    """The roots one server answers for, by name."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.roots: dict[str, Root] = {}
        self.models = Models()
        for path in paths:
            path = Path(path).expanduser().resolve()
            if any(r.path == path for r in self.roots.values()):
                continue
            name, n = path.name or "root", 1
            while name in self.roots:
                n += 1
                name = f"{path.name or 'root'}-{n}"
            self.roots[name] = Root(name, path, self.models)
        self.ready = threading.Event()
        self.ready.set()  # until start(): callers in this process import as they go

    def start(self) -> None:
        """Import the heavy modules, then index or warm each root in turn, in the background."""
        self.ready.clear()
        threading.Thread(target=self._prepare, name="codesearch-prepare", daemon=True).start()

    def _prepare(self) -> None:
        try:
            for name in PRELOAD:
                try:
                    importlib.import_module(name)
                except ImportError as err:
                    log.info("not preloaded: %s", one_line(err))
        finally:
            self.ready.set()
        for root in self.roots.values():
            root.prepare()

    def wait_ready(self) -> None:
        if not self.ready.wait(READY_SECONDS):
            raise ToolError("the server is still starting: try again in a moment")

    def close(self) -> None:
        for root in self.roots.values():
            root.close()

    def describe(self) -> str:
        return ", ".join(f"{name} ({root.path})" for name, root in self.roots.items())

    def pick(self, root: str | None) -> list[Root]:
        """Every root, or the one named (by name, or by a path at or inside it)."""
        if root is None or not root.strip():
            return list(self.roots.values())
        if root in self.roots:
            return [self.roots[root]]
        wanted = Path(root).expanduser()
        if wanted.is_absolute():
            wanted = wanted.resolve()
            for candidate in sorted(self.roots.values(), key=lambda r: -len(r.path.parts)):
                if wanted.is_relative_to(candidate.path):
                    return [candidate]
        raise ToolError(f"no root {root!r}: this server serves {self.describe()}")

    def locate(self, path: str, root: str | None) -> tuple[Root, str]:
        """The root a file is in and its path there; refused when it leaves the root."""
        if not path.strip():
            raise ToolError("empty path: give a file path relative to the root")
        candidates = self.pick(root)
        raw = Path(path).expanduser()
        if raw.is_absolute():
            candidates = [r for r in candidates if raw.resolve().is_relative_to(r.path)] or candidates
        elif len(candidates) > 1:
            candidates = [r for r in candidates if (r.path / raw).exists()] or candidates[:1]
        target = candidates[0]
        full = raw if raw.is_absolute() else target.path / raw
        real = Path(os.path.realpath(full))
        if not real.is_relative_to(target.path):
            raise ToolError(f"{path} is outside the indexed root {target.path}: only files under "
                            "it can be read")
        rel = real.relative_to(target.path)
        if rel.parts and rel.parts[0] in PRIVATE_DIRS:
            raise ToolError(f"{path} is inside {rel.parts[0]}/, which holds no source to read")
        return target, rel.as_posix()


# --- the tools ------------------------------------------------------------------------


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Expected failures become one-line tool errors; anything else is logged whole to
    stderr and still answered in one line. The server keeps serving either way."""
    try:
        yield
    except ToolError:
        raise
    except USER_ERRORS as err:
        raise ToolError(one_line(err)) from None
    except Exception as err:
        log.exception("tool failed")
        raise ToolError(f"internal error: {one_line(err)}") from None


class Tools:
    """What the MCP tools do, callable in-process (the benchmark and tests call these)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def _refresh(self, root: Root, notes: list[str]) -> int:
        self.workspace.wait_ready()
        if root.error and not root.index.exists:
            root.error = None  # a failed start-up build: try again now
        try:
            return root.refresh()
        except LockTimeout as err:
            notes.append(f"{root.name}: changed files not re-indexed yet ({one_line(err)})")
            return 0

    def search(self, query: str, k: int = 10, mode: str = "hybrid", lang: str | None = None,
               path: str | None = None, content: str = "code", max_tokens: int = 4000,
               cursor: str | None = None, root: str | None = None, per_file: int = 0) -> SearchAnswer:
        with _tool_errors():
            query = query.strip()
            if not query:
                raise ToolError("empty query: say what you are looking for, in words or as a name")
            _check_choice("mode", mode, ("hybrid", "text", "vector"))
            _check_choice("content", content, ("code", "docs", "all"))
            _check_range("k", k, 1, MAX_K)
            _check_range("max_tokens", max_tokens, MIN_TOKENS, MAX_TOKENS)
            _check_range("per_file", per_file, 0, MAX_K)
            targets = self.workspace.pick(root)
            key = cursor_key(query, mode, lang, path, content, root, per_file)
            offset = read_cursor(cursor, key) if cursor else 0
            if offset + k > MAX_RESULTS:
                raise ToolError(f"cannot page past hit {MAX_RESULTS}: refine the query instead")
            languages = tuple(w.strip() for w in (lang or "").split(",") if w.strip())
            options = SearchOptions(k=offset + k + 1, mode=mode, languages=languages,
                                    path_glob=path or None, content=content, per_file=per_file)
            notes: list[str] = []
            found, pending, reindexed = self._gather(targets, query, options, notes)
            if not found and languages:
                notes.append(_languages_note(targets, languages))
            page = found[offset : offset + k]
            more = len(found) > offset + k
            terms = query_terms(query)
            entries = [_entry(name, hit, terms) for name, hit in page]
            answer = SearchAnswer(query=query, mode=mode, hits=[], omitted=0, cut=0,
                                  next_cursor=None, tokens=0, max_tokens=max_tokens,
                                  vectors_pending=pending, reindexed_files=reindexed)
            return _budgeted_search(answer, entries, offset, more, key, notes)

    def _gather(self, targets: Sequence[Root], query: str, options: SearchOptions,
                notes: list[str]) -> tuple[list[tuple[str, Hit]], int, int]:
        found: list[tuple[str, Hit]] = []
        pending = reindexed = 0
        failures: list[str] = []
        for target in targets:
            try:
                reindexed += self._refresh(target, notes)
                result = target.index.run(query, options)
            except USER_ERRORS as err:
                if len(targets) == 1:
                    raise
                failures.append(f"{target.name}: {one_line(err)}")
                continue
            pending += result.vectors_pending
            found.extend((target.name, hit) for hit in result.hits)
        if failures and not found and len(failures) == len(targets):
            raise ToolError("; ".join(failures))
        notes.extend(failures)
        if len(targets) > 1:
            found.sort(key=lambda item: -item[1].score)
        return found, pending, reindexed

    def find_symbol(self, name: str, kind: str | None = None, root: str | None = None,
                    max_tokens: int = 4000) -> SymbolAnswer:
        with _tool_errors():
            name = name.strip().rstrip("()").strip()
            if not name:
                raise ToolError("empty name: give a symbol such as read_csv, Class.method or pkg.func")
            _check_range("max_tokens", max_tokens, MIN_TOKENS, MAX_TOKENS)
            notes: list[str] = []
            defs: list[tuple[int, Definition, str]] = []
            refs: list[Reference] = []
            reindexed = 0
            wanted_kind = _KIND_ALIASES.get((kind or "").lower(), (kind or "").lower())
            for target in self.workspace.pick(root):
                reindexed += self._refresh(target, notes)
                for hit in target.index.definitions(name):
                    tier = symbol_tier(name, hit.path, hit.symbol)
                    if tier is None or (wanted_kind and hit.kind.lower() != wanted_kind):
                        continue
                    defs.append((tier, _definition(target.name, hit, tier), hit.text))
                refs.extend(_references(target, name))
            languages = {d.language for _, d, _ in defs}
            if languages:  # `stats.push` in Python is no use of a JavaScript `push`
                refs = [r for r in refs if r.language in languages]
            best = min((t for t, _, _ in defs), default=None)
            if best is not None and best < 2:
                defs = [d for d in defs if d[0] < 2]  # a name-only match only when nothing better
            defs.sort(key=lambda d: (d[0], _is_test(d[1].path), d[1].root, d[1].path, d[1].start_line))
            spans = {(d.root, d.path, line) for _, d, _ in defs for line in range(d.start_line, d.end_line + 1)}
            refs = [r for r in refs if (r.root, r.path, r.line) not in spans][:MAX_REFERENCES]
            if not defs:
                notes.append(f"no definition named {name!r}" + (f" of kind {kind!r}" if kind else "")
                             + ": try search() with words describing it")
            return _budgeted_symbols(name, defs, refs, max_tokens, reindexed, notes)

    def read_span(self, path: str, start_line: int = 1, end_line: int | None = None,
                  root: str | None = None, max_tokens: int = SPAN_DEFAULT_TOKENS) -> Span:
        with _tool_errors():
            _check_range("start_line", start_line, 1, 10**9)
            _check_range("max_tokens", max_tokens, MIN_TOKENS, MAX_TOKENS)
            if end_line is not None and end_line < start_line:
                raise ToolError(f"end_line {end_line} is before start_line {start_line}")
            target, rel = self.workspace.locate(path, root)
            full = target.path / rel
            if not full.is_file():
                raise ToolError(f"no such file in {target.name}: {rel}")
            if full.stat().st_size > SPAN_MAX_FILE_BYTES:
                raise ToolError(f"{rel} is over {SPAN_MAX_FILE_BYTES // 1_000_000} MB: not source to read")
            data = full.read_bytes()
            if b"\0" in data[:8192]:
                raise ToolError(f"{rel} is a binary file")
            lines = data.decode("utf-8", errors="replace").splitlines()
            if start_line > max(len(lines), 1):
                raise ToolError(f"{rel} has {len(lines)} lines: start_line {start_line} is past its end")
            last = len(lines) if end_line is None else min(end_line, len(lines))
            budget = max_tokens * CHARS_PER_TOKEN - 400  # the rest of the answer
            taken: list[str] = []
            used = 0
            for line in lines[start_line - 1 : last]:
                cost = json_chars(line) + 2
                if taken and used + cost > budget:
                    break
                taken.append(line if cost <= budget else _clip(line, max(1, budget // 2)))
                used += cost
            shown_end = start_line + len(taken) - 1
            truncated = shown_end < last
            return Span(root=target.name, path=rel, start_line=start_line, end_line=shown_end,
                        total_lines=len(lines), text="\n".join(taken), truncated=truncated,
                        next_start_line=shown_end + 1 if truncated else None)

    def index_status(self, root: str | None = None) -> StatusAnswer:
        with _tool_errors():
            self.workspace.wait_ready()
            return StatusAnswer(server_version=VERSION,
                                roots=[_root_status(r) for r in self.workspace.pick(root)])

    def reindex(self, paths: list[str] | None = None, root: str | None = None) -> ReindexAnswer:
        with _tool_errors():
            self.workspace.wait_ready()
            if paths is None:
                return ReindexAnswer(roots=[r.reindex(None) for r in self.workspace.pick(root)])
            grouped: dict[str, tuple[Root, list[str]]] = {}
            for raw in paths:
                target, rel = self.workspace.locate(raw, root)
                grouped.setdefault(target.name, (target, []))[1].append(rel)
            return ReindexAnswer(roots=[t.reindex(rels) for t, rels in grouped.values()])


_KIND_ALIASES = {"func": "function", "fn": "function", "def": "function", "fun": "function",
                 "protocol": "interface", "typedef": "type"}
_SPLIT = re.compile(r"::|->|[.:#/\\]")


def _parts(name: str) -> list[str]:
    return [p for p in _SPLIT.split(name) if p]


def symbol_tier(name: str, path: str, symbol: str) -> int | None:
    """How well a definition answers a (qualified) name: 0 exact, 1 ignoring case, 2 the
    last part only, None not at all. A qualifier may name enclosing definitions
    (`Class.method`, `Type::method`) or the module path (`pkg.func`, `tables.read_csv`)."""
    wanted = _parts(name)
    own = _parts(symbol)
    if not wanted or not own or wanted[-1].lower() != own[-1].lower():
        return None
    module = _parts(path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path)
    # The qualifier may name the file's module or, as in Go (and a Python package's
    # __init__), only its folder.
    for tier, fold in ((0, str), (1, str.lower)):
        w = [fold(p) for p in wanted]
        for qualified in (module + own, module[:-1] + own):
            if len(w) <= len(qualified) and [fold(p) for p in qualified[-len(w):]] == w:
                return tier
    return 2


def _is_test(path: str) -> bool:
    return bool(re.search(r"(^|/)(tests?|spec|__tests__)/|(^|/)test_|_test\.|\.test\.|\.spec\.", path))


def _entry(root: str, hit: Hit, terms: frozenset[str]) -> Entry:
    text = hit.text.rstrip("\n")
    meta = SearchHit(root=root, path=hit.path, start_line=hit.start_line, end_line=hit.end_line,
                     symbol=hit.symbol, kind=hit.kind, language=hit.language,
                     score=hit.score, snippet="", cut=False)
    focus = (hit.match_start_line or hit.start_line, hit.match_end_line or hit.end_line)
    return Entry(meta, text, focus, terms)


def _definition(root: str, hit: Hit, tier: int) -> Definition:
    return Definition(root=root, path=hit.path, start_line=hit.start_line, end_line=hit.end_line,
                      symbol=hit.symbol, kind=hit.kind, language=hit.language,
                      score=(1.0, 0.9, 0.5)[tier], snippet="", cut=False,
                      match=("exact", "case", "name")[tier])  # type: ignore[arg-type]


def _budgeted_search(answer: SearchAnswer, entries: list[Entry], offset: int, more: bool, key: str,
                     notes: list[str]) -> SearchAnswer:
    budget = answer.max_tokens * CHARS_PER_TOKEN
    reserve = _note([*notes, "x" * NOTE_RESERVE_SENTENCES])
    base = len(answer.model_copy(update={"next_cursor": f"{MAX_RESULTS}.{key}", "tokens": MAX_TOKENS,
                                         "note": reserve}).model_dump_json())
    room = budget - base
    while True:
        hits = fit(entries, room)
        omitted = len(entries) - len(hits)
        shown = offset + len(hits)
        next_cursor = f"{shown}.{key}" if hits and (omitted or more) else None
        said = list(notes)
        if omitted and hits:
            said.append(f"{omitted} more hits left out for max_tokens: use next_cursor")
        elif omitted:
            said.append("max_tokens is too small for one hit: raise it")
        cut = sum(h.cut for h in hits)
        if cut:
            said.append(f"{cut} snippets cut: read_span shows the rest")
        final = answer.model_copy(update={"hits": hits, "omitted": omitted, "cut": cut,
                                          "next_cursor": next_cursor,
                                          "note": _note(said)})
        count_tokens(final)
        over = len(final.model_dump_json()) - budget
        if over <= 0 or not hits:
            return final
        room -= over  # the estimate was short (rare): take it off the snippets and retry


def _note(said: list[str]) -> str | None:
    if not said:
        return None
    text = "; ".join(said)
    return text if len(text) <= NOTE_RESERVE else text[: NOTE_RESERVE - 1] + "…"


def _budgeted_symbols(name: str, defs: list[tuple[int, Definition, str]], refs: list[Reference],
                      max_tokens: int, reindexed: int, notes: list[str]) -> SymbolAnswer:
    budget = max_tokens * CHARS_PER_TOKEN
    shell = SymbolAnswer(name=name, definitions=[], references=[], omitted=0, tokens=MAX_TOKENS,
                         max_tokens=max_tokens, reindexed_files=reindexed,
                         note=_note([*notes, "x" * NOTE_RESERVE_SENTENCES]))
    room = budget - len(shell.model_dump_json())
    kept_refs: list[Reference] = []
    ref_room = int(room * REFERENCE_SHARE)
    for ref in refs:
        cost = len(ref.model_dump_json()) + 1
        if cost > ref_room:
            break
        kept_refs.append(ref)
        ref_room -= cost
    room -= sum(len(r.model_dump_json()) + 1 for r in kept_refs)
    terms = query_terms(name)
    entries = [Entry(d, text.rstrip("\n"), (d.start_line, d.end_line), terms) for _, d, text in defs]
    while True:
        placed = fit(entries, room)
        definitions = [h for h in placed if isinstance(h, Definition)]  # render keeps the class
        omitted = len(entries) - len(definitions)
        said = list(notes)
        if omitted:
            said.append(f"{omitted} more definitions left out for max_tokens")
        answer = SymbolAnswer(name=name, definitions=definitions, references=kept_refs,
                              omitted=omitted, tokens=0, max_tokens=max_tokens,
                              reindexed_files=reindexed, note=_note(said))
        count_tokens(answer)
        over = len(answer.model_dump_json()) - budget
        if over <= 0 or not definitions:
            return answer
        room -= over


def _languages_note(targets: Sequence[Root], asked: Sequence[str]) -> str:
    held: set[str] = set()
    for target in targets:
        with suppress(*USER_ERRORS):
            held.update(target.index.searcher().catalog.languages)
    return f"no hits in {', '.join(asked)}: the index holds {', '.join(sorted(held)) or 'no code'}"


def _references(target: Root, name: str) -> list[Reference]:
    """Lines that use the name's last part as a whole word, from full-text hits."""
    last = _parts(name)[-1]
    pattern = re.compile(rf"(?<![\w$]){re.escape(last)}(?![\w$])")
    options = SearchOptions(k=30, mode="text", content="all")
    refs: list[Reference] = []
    for hit in target.index.run(last, options).hits:
        for n, line in enumerate(hit.text.split("\n")):
            if pattern.search(line):
                refs.append(Reference(root=target.name, path=hit.path, line=hit.start_line + n,
                                      language=hit.language, symbol=hit.symbol,
                                      text=_clip(line.strip(), 160)))
    return refs


def _root_status(root: Root) -> RootStatus:
    exists = root.index.exists
    info = root.index.status(count_changes=False) if exists else None
    changed = root.changes() if exists else None
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(info.indexed_at)) if info and info.indexed_at else None
    return RootStatus(root=root.name, path=str(root.path), indexed=exists,
                      model=info.model if info else None, files=info.files if info else 0,
                      chunks=info.chunks if info else 0,
                      vectors_pending=info.vectors_pending if info else 0,
                      embedding=root.embedding, last_indexed=when, changed_since=changed,
                      error=root.error)


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ToolError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ToolError(f"{name} must be between {low} and {high}, got {value}")


# --- the server ------------------------------------------------------------------------

INSTRUCTIONS = """\
codesearch searches this code base by meaning and by name; the index follows your edits \
(no need to reindex after editing files).
- search(query): find code by what it does ("retry a request with backoff") or by words; \
hits are whole definitions, best first, within max_tokens. Page on with next_cursor.
- find_symbol(name): jump to a definition by name (read_csv, Class.method, pkg.func, \
Type::method), then the lines that use it.
- read_span(path, start_line, end_line): read lines of a file under the root (e.g. the rest \
of a hit that was cut).
- index_status(): what is indexed and how fresh; reindex(paths): force a re-read."""


class _Server(MCPServer):
    """MCPServer whose argument errors are one line, like every other tool error."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as err:
            cause = err.__cause__
            if isinstance(err, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            first = cause.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "arguments"
            raise ToolError(f"bad argument {where}: {first['msg']}") from None


def _result(model: BaseModel) -> CallToolResult:
    """Compact JSON for the model to read, the same data as structured content."""
    data = model.model_dump(mode="json")
    return CallToolResult(content=[TextContent(type="text", text=model.model_dump_json())],
                          structured_content=data)


def build_server(workspace: Workspace) -> MCPServer:
    tools = Tools(workspace)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[dict[str, Any]]:
        workspace.start()
        try:
            yield {}
        finally:
            workspace.close()

    server = _Server("codesearch", instructions=INSTRUCTIONS, version=VERSION,
                     log_level="WARNING", lifespan=lifespan)

    @server.tool()
    def search(
        query: Annotated[str, Field(description="What the code does, in words, or a name or words it contains.")],
        k: Annotated[int, Field(description="Hits per page (1-100).", ge=1, le=MAX_K)] = 10,
        mode: Annotated[Mode, Field(description="hybrid (words + meaning, best), text (words only) or vector (meaning only).")] = "hybrid",
        lang: Annotated[str | None, Field(description="Only these languages, comma-separated: python, go, rust, typescript, ...")] = None,
        path: Annotated[str | None, Field(description="Only paths matching this glob, relative to the root, e.g. 'src/*'.")] = None,
        content: Annotated[Content, Field(description="code, docs (Markdown and other prose) or all.")] = "code",
        max_tokens: Annotated[int, Field(description=f"Budget for the whole answer, at {CHARS_PER_TOKEN} characters of JSON per token.", ge=MIN_TOKENS, le=MAX_TOKENS)] = 4000,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous answer, to get the next hits.")] = None,
        root: Annotated[str | None, Field(description="Search one root only (its name or path); default: all.")] = None,
        per_file: Annotated[int, Field(description="At most this many hits from one file (0: no limit); 1 or 2 shows more files.", ge=0, le=MAX_K)] = 0,
    ) -> Annotated[CallToolResult, SearchAnswer]:
        """Search the code base: whole definitions (functions, classes, methods) ranked by
        words and meaning, with path, lines and code. Use it to find where something is
        done before reading files. Long hits are cut to their signature and the lines that
        matched; read_span shows the rest."""
        return _result(tools.search(query, k, mode, lang, path, content, max_tokens, cursor, root,
                                    per_file))

    @server.tool()
    def find_symbol(
        name: Annotated[str, Field(description="A name, optionally qualified: read_csv, Class.method, pkg.func, Type::method.")],
        kind: Annotated[str | None, Field(description="Only this kind: function, method, class, struct, interface, enum, ...")] = None,
        root: Annotated[str | None, Field(description="One root only (its name or path); default: all.")] = None,
        max_tokens: Annotated[int, Field(description="Budget for the whole answer.", ge=MIN_TOKENS, le=MAX_TOKENS)] = 4000,
    ) -> Annotated[CallToolResult, SymbolAnswer]:
        """Go to a definition by name: exact matches first, then the same name ignoring
        case, with their code; then lines that use the name. Faster and more precise than
        search when you know the name."""
        return _result(tools.find_symbol(name, kind, root, max_tokens))

    @server.tool()
    def read_span(
        path: Annotated[str, Field(description="File path relative to the root (as hits give it).")],
        start_line: Annotated[int, Field(description="First line, 1-based.", ge=1)] = 1,
        end_line: Annotated[int | None, Field(description="Last line (inclusive); default: the end of the file.")] = None,
        root: Annotated[str | None, Field(description="The root the path is in, when serving several.")] = None,
        max_tokens: Annotated[int, Field(description="Budget for the text; a longer span stops early with next_start_line.", ge=MIN_TOKENS, le=MAX_TOKENS)] = SPAN_DEFAULT_TOKENS,
    ) -> Annotated[CallToolResult, Span]:
        """Read lines of a file under the indexed root (paths outside it are refused)."""
        return _result(tools.read_span(path, start_line, end_line, root, max_tokens))

    @server.tool()
    def index_status(
        root: Annotated[str | None, Field(description="One root only; default: all.")] = None,
    ) -> Annotated[CallToolResult, StatusAnswer]:
        """What is indexed: model, files, chunks, chunks not embedded yet, last index time,
        files changed since (searches re-index those first)."""
        return _result(tools.index_status(root))

    @server.tool()
    def reindex(
        paths: Annotated[list[str] | None, Field(description="Only these files (relative to the root); default: every changed file.")] = None,
        root: Annotated[str | None, Field(description="One root only; default: all.")] = None,
    ) -> Annotated[CallToolResult, ReindexAnswer]:
        """Re-read changed files now. Rarely needed: every search does it for files edited
        since. Returns once the words are searchable; vectors follow in the background."""
        return _result(tools.reindex(paths, root))

    return server


def serve(roots: Sequence[Path]) -> int:
    """Serve `roots` over stdio until the client hangs up."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    workspace = Workspace(roots)
    server = build_server(workspace)
    # Plain lines on stderr (clients keep them in their server logs), unwrapped.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("codesearch mcp: %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    log.info("serving %s", workspace.describe())
    with suppress(KeyboardInterrupt, BrokenPipeError):
        server.run()
    return 0
