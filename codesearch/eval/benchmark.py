"""Run labelled queries against real indexes: `codesearch eval` and `bench/`.

A query file names a corpus per query (or none: the current folder). Each
corpus is indexed once (incrementally, so a second run only queries), then
every configuration answers every query and the reports are compared.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codesearch.api import Index
from codesearch.core.types import RankingConfig, SearchOptions
from codesearch.eval.evaluate import EvalQuery, EvalReport, RetrievedChunk, run_eval_by_corpus
from codesearch.index.build import IndexOptions, Progress


@dataclass(frozen=True)
class EvalConfig:
    label: str
    mode: str = "hybrid"
    ranking: RankingConfig = field(default_factory=RankingConfig)
    rerank: str | None = None
    rerank_top: int = 40


SIGNALS = ("adaptive_fusion", "symbol_boost", "path_match", "file_coherence", "path_penalties",
           "dedup", "kind_prior")


def mode_configs(modes: Sequence[str]) -> list[EvalConfig]:
    configs = []
    for mode in modes:
        configs.append(EvalConfig(f"{mode} (no ranking signals)", mode, RankingConfig.none()))
        configs.append(EvalConfig(f"{mode} + ranking signals", mode, RankingConfig()))
    return configs


def ablation_configs(mode: str = "hybrid") -> list[EvalConfig]:
    """The defaults, no signals, and each signal flipped from its default in turn."""
    default = RankingConfig()
    configs = [EvalConfig("default signals", mode, default),
               EvalConfig("no signals", mode, RankingConfig.none())]
    for name in SIGNALS:
        on = getattr(default, name)
        flipped = replace(default, **{name: not on})
        configs.append(EvalConfig(f"{'without' if on else 'with'} {name}", mode, flipped))
    configs.append(EvalConfig("without size_prior", mode, replace(default, size_prior=0.0)))
    return configs


def corpus_roots(queries: Sequence[EvalQuery], root: Path) -> dict[str, Path]:
    """Folder of each corpus named by the queries; '' means `root` itself."""
    roots: dict[str, Path] = {}
    for q in queries:
        if q.corpus not in roots:
            folder = root / q.corpus if q.corpus else root
            if not folder.is_dir():
                raise ValueError(f"corpus '{q.corpus}' not found at {folder}")
            roots[q.corpus] = folder
    return roots


def ensure_indexes(
    roots: dict[str, Path],
    options: IndexOptions,
    embedder: Any | None = None,
    progress: Progress | None = None,
) -> dict[str, float]:
    seconds = {}
    for corpus, folder in roots.items():
        started = time.perf_counter()
        Index(folder, embedder=embedder).update(options=options, progress=progress)
        seconds[corpus] = time.perf_counter() - started
    return seconds


class CorpusSearch:
    """One Index per corpus, shared embedder; answers `search(corpus, q, k)`."""

    def __init__(self, roots: dict[str, Path], embedder: Any | None = None):
        self.indexes = {c: Index(p, embedder=embedder) for c, p in roots.items()}
        self.config = EvalConfig("default")

    def __call__(self, corpus: str, query: str, k: int) -> list[RetrievedChunk]:
        options = SearchOptions(k=k, mode=self.config.mode, ranking=self.config.ranking,
                                rerank=self.config.rerank, rerank_top=self.config.rerank_top)
        hits = self.indexes[corpus].run(query, options).hits
        return [RetrievedChunk(h.path, h.start_line, h.end_line) for h in hits]


def run_configs(
    queries: Sequence[EvalQuery],
    roots: dict[str, Path],
    configs: Sequence[EvalConfig],
    k: int = 10,
    embedder: Any | None = None,
    index_seconds: float | None = None,
) -> list[EvalReport]:
    search = CorpusSearch(roots, embedder)
    if embedder is None and any(c.mode != "text" for c in configs):
        # Load the query model once, outside the timed queries.
        first = next(iter(search.indexes.values()))
        shared = first.searcher().embedder()
        for index in search.indexes.values():
            index.lend_embedder(shared)
    for index in search.indexes.values():
        index.searcher().vectors()  # load outside the timed queries
    reports = []
    for config in configs:
        search.config = config
        reports.append(run_eval_by_corpus(queries, search, k, index_seconds, config.label))
    return reports


def self_eval_copy(root: Path, dest: Path, limit: int, seed: int) -> list[EvalQuery]:
    """CodeSearchNet-style queries from `root`'s own docstrings, and a copy to index.

    The copy at `dest` has the docstrings of the chosen definitions blanked out
    (lines kept, so spans hold): the query must be found by meaning, not by
    matching its own text.
    """
    import shutil

    from codesearch.eval.evaluate import self_queries, strip_docstring
    from codesearch.source.chunk import chunk_file
    from codesearch.source.discover import discover, read_text

    chunks = []
    texts: dict[str, str] = {}
    for source in discover(root):
        try:
            text, _ = read_text(source)
        except OSError:
            continue
        texts[source.path] = text
        chunks.extend(chunk_file(source.path, text, source.language))
    queries = self_queries(chunks, limit=limit, seed=seed)
    targets = {(t.path, t.start_line) for q in queries for t in q.targets}
    by_path: dict[str, list[Any]] = {}
    for c in chunks:
        if (c.path, c.start_line) in targets:
            by_path.setdefault(c.path, []).append(c)
    for path, text in texts.items():
        out = dest / path
        out.parent.mkdir(parents=True, exist_ok=True)
        lines = text.split("\n")
        for c in by_path.get(path, []):
            stripped = strip_docstring(c.text, c.language, keep_lines=True).split("\n")
            if len(stripped) == c.end_line - c.start_line + 1:
                lines[c.start_line - 1 : c.end_line] = stripped
        out.write_text("\n".join(lines), encoding="utf-8")
    ignore = root / ".gitignore"
    if ignore.exists():
        shutil.copy(ignore, dest / ".gitignore")
    return queries
