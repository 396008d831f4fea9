"""Tune the ranking weights jointly on the development benchmark, cross-validated by corpus.

    python bench/tune.py                          # coordinate ascent over every weight
    python bench/tune.py --only vector_weight,size_prior
    python bench/tune.py --score "size_prior=0.3" "saturation=True"   # just score these
    python bench/tune.py --per-file 7,5,3,2,1     # what `--per-file N` costs and gains

Ranking is a pure function of a query's candidate lists (`Searcher.candidates` then
`fuse_and_rank`), so the lists are gathered once (about 30 s for 603 queries) and any
`RankingConfig` that leaves them alone is then scored in about 2 s instead of a minute of
`bench/sweep.py`. Settings that change the lists themselves (field boosts, abbreviations,
`definition_lookup`) are not tuned here: use sweep.py.

With no vector list (`--mode text`) ranking uses the `lexical_*` settings in place of
`size_prior`, `size_prior_lines` and `module_penalty` (`RankingConfig.lexical_only`).

Coordinate ascent over GRID on half of the corpora (one corpus of each language to
each half), scored on the other half, both ways, then on all of them. A weight change
that helps the half it was tuned on and not the other is noise fitted to our queries.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import mean

from codesearch.core.types import RankingConfig, SearchOptions
from codesearch.eval.benchmark import corpus_roots, ensure_indexes
from codesearch.eval.evaluate import (
    RELEVANT,
    EvalQuery,
    RetrievedChunk,
    Target,
    load_queries,
    ndcg_at,
    recall_at,
)
from codesearch.index.build import IndexOptions
from codesearch.search.ranking import (
    Candidate,
    at_most_per_file,
    best_member,
    fuse_and_rank,
    symbol_query,
)
from codesearch.search.searcher import CandidateLists

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from sweep import parse_overrides  # noqa: E402

GRID: dict[str, Sequence[object]] = {
    "vector_weight": (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65),
    "coherence_weight": (0.0, 0.05, 0.1, 0.15, 0.2, 0.3),
    "size_prior": (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4),
    "size_prior_lines": (6.0, 8.0, 12.0, 16.0, 25.0),
    "size_prior_how_only": (False, True),
    "lexical_size_prior": (0.0, 0.2, 0.3, 0.4, 0.5, 0.6),
    "lexical_size_prior_lines": (6.0, 8.0, 12.0, 16.0),
    "lexical_module_penalty": (0.6, 0.7, 0.8, 0.9, 1.0),
    "path_weight": (0.0, 0.1, 0.25, 0.4, 0.6),
    "stem_boost": (0.0, 0.05, 0.1, 0.2, 0.3),
    "definition_weight": (0.0, 0.1, 0.2, 0.4),
    "nl_symbol_weight": (0.0, 0.1, 0.2, 0.4),
    "test_penalty": (0.2, 0.4, 0.6, 0.8),
    "example_penalty": (0.5, 0.65, 0.8, 1.0),
    "vendor_penalty": (0.3, 0.5, 0.7, 1.0),
    "module_penalty": (0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "declaration_penalty": (0.4, 0.5, 0.6, 0.7, 0.8, 1.0),
    "saturation": (False, True),
    "saturation_decay": (0.3, 0.5, 0.7, 0.85),
    "saturation_free": (1, 2, 3),
    "coherence_mode": ("all", "best"),
    "coherence_best_frac": (0.1, 0.2, 0.3),
}
MIN_GAIN = 0.0005  # a step must lift the tuned half's NDCG@10 by this much


@dataclass(frozen=True)
class Gathered:
    """One query's candidate lists, and the span each candidate is reported with."""

    query: EvalQuery
    lists: CandidateLists
    spans: dict[int, tuple[str, int, int]]  # row -> (path, first line, last line) of its definition
    vector_scale: float  # the index model's fusion scale (Searcher.ranking)


def gather(queries: Sequence[EvalQuery], roots: dict[str, Path], mode: str) -> list[Gathered]:
    from codesearch.api import Index

    indexes = {corpus: Index(root) for corpus, root in roots.items()}
    out = []
    for q in queries:
        searcher = indexes[q.corpus].searcher()
        options = SearchOptions(k=10, mode=mode)
        lists = searcher.candidates(q.query, options)
        catalog = searcher.catalog
        spans = {}
        for i in lists.pool:
            parts = catalog.definition(i)
            spans[i] = (catalog.paths[i], catalog.starts[parts[0]], catalog.ends[parts[-1]])
        weight = options.ranking.vector_weight
        scale = searcher.ranking(options).vector_weight / weight if weight else 1.0
        out.append(Gathered(q, lists, spans, scale))
    return out


def ranked_chunks(g: Gathered, config: RankingConfig, per_file: int = 0) -> list[RetrievedChunk]:
    """The top ten as Searcher.search reports them (definition spans, named members;
    at most `per_file` of one file, as `SearchOptions.per_file`)."""
    if g.vector_scale != 1.0:
        config = replace(config, vector_weight=config.vector_weight * g.vector_scale)
    lists = g.lists
    ranked = fuse_and_rank(g.query.query, lists.lexical, lists.vector, lists.pool, config)
    if per_file:
        ranked = at_most_per_file(ranked, lambda i: lists.pool[i].path, per_file)
    ranked = ranked[:10]
    asked = symbol_query(g.query.query)
    out = []
    for i, _ in ranked:
        path, start, end = g.spans[i]
        member = _member(asked, lists.pool[i]) if config.member_hits else None
        if member is not None:
            start, end = member[2], member[3]
        out.append(RetrievedChunk(path, start, end))
    return out


def _member(asked: tuple[str, str] | None, cand: Candidate) -> tuple[str, str, int, int] | None:
    return best_member(asked[0], cand) if asked is not None else None


@dataclass(frozen=True)
class Scores:
    ndcg: float
    recall_1: float
    by_category: dict[str, float]
    by_language: dict[str, float]


def score(gathered: Sequence[Gathered], config: RankingConfig, corpora: set[str] | None = None) -> Scores:
    rows = []
    for g in gathered:
        if corpora is None or g.query.corpus in corpora:
            chunks = ranked_chunks(g, config)
            rows.append((g.query, ndcg_at(chunks, g.query.targets, 10), recall_at(chunks, g.query.targets, 1)))

    def mean_by(key: str) -> dict[str, float]:
        groups: dict[str, list[float]] = {}
        for q, ndcg, _ in rows:
            groups.setdefault(getattr(q, key), []).append(ndcg)
        return {k: sum(v) / len(v) for k, v in sorted(groups.items())}

    n = max(1, len(rows))
    return Scores(sum(r[1] for r in rows) / n, sum(r[2] for r in rows) / n,
                  mean_by("category"), mean_by("language"))


def breadth(gathered: Sequence[Gathered], per_file: int) -> str:
    """One row of the --per-file table: files in the top ten and NDCG@10 scored four ways
    (as labelled; every target worth 1, as the held-out scorer counts; the relevant
    targets alone; and by file, a hit scoring when its file holds a target)."""
    files, span, binary, relevant, by_file = [], [], [], [], []
    by_category: dict[str, list[float]] = {}
    for g in gathered:
        chunks = ranked_chunks(g, RankingConfig(), per_file)
        targets = g.query.targets
        files.append(len({c.path for c in chunks}))
        span.append(ndcg_at(chunks, targets, 10))
        by_category.setdefault(g.query.category, []).append(span[-1])
        binary.append(ndcg_at(chunks, [replace(t, grade=RELEVANT) for t in targets], 10))
        relevant.append(ndcg_at(chunks, [t for t in targets if t.grade >= RELEVANT], 10))
        paths = dict.fromkeys(t.path for t in targets)
        by_file.append(ndcg_at(chunks, [Target(path, None, None, RELEVANT) for path in paths], 10))
    cats = " / ".join(f"{mean(v):.3f}" for _, v in sorted(by_category.items()))
    return (f"| {per_file or 'no limit'} | {mean(files):.2f} | {mean(span):.3f} | {cats} | "
            f"{mean(binary):.3f} | {mean(relevant):.3f} | {mean(by_file):.3f} |")


def halves(gathered: Sequence[Gathered]) -> tuple[set[str], set[str]]:
    """Corpora split in two, alternating within each language (most have two corpora)."""
    by_language: dict[str, list[str]] = {}
    for g in gathered:
        names = by_language.setdefault(g.query.language, [])
        if g.query.corpus not in names:
            names.append(g.query.corpus)
    first: set[str] = set()
    second: set[str] = set()
    ordered = [c for _, names in sorted(by_language.items()) for c in names]
    for n, corpus in enumerate(ordered):
        (first if n % 2 == 0 else second).add(corpus)
    return first, second


def ascend(gathered: Sequence[Gathered], grid: dict[str, Sequence[object]],
           corpora: set[str] | None, rounds: int = 2) -> tuple[RankingConfig, float]:
    config = RankingConfig()
    best = score(gathered, config, corpora).ndcg
    for _ in range(rounds):
        moved = False
        for name, values in grid.items():
            for value in values:
                if getattr(config, name) == value:
                    continue
                trial = replace(config, **{name: value})
                ndcg = score(gathered, trial, corpora).ndcg
                if ndcg > best + MIN_GAIN:
                    best, config, moved = ndcg, trial, True
        if not moved:
            break
    return config, best


def changes(config: RankingConfig) -> str:
    default = RankingConfig()
    moved = {f: getattr(config, f) for f in GRID if getattr(config, f) != getattr(default, f)}
    return ", ".join(f"{k}={v}" for k, v in moved.items()) or "(the defaults)"


def line(label: str, s: Scores) -> str:
    cats = " ".join(f"{c} {v:.3f}" for c, v in s.by_category.items())
    return f"{label}: NDCG@10 {s.ndcg:.4f}, R@1 {s.recall_1:.3f}, {cats}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="hybrid", choices=("hybrid", "text", "vector"))
    parser.add_argument("--only", help="comma-separated GRID settings to tune (default: all)")
    parser.add_argument("--score", nargs="*", metavar="CONFIG",
                        help="only score these configurations (sweep.py's syntax)")
    parser.add_argument("--per-file", metavar="N,N,...",
                        help="score the default ranking with at most N hits of a file, for each N")
    parser.add_argument("--queries", type=Path, default=BENCH / "queries")
    parser.add_argument("--root", type=Path, default=BENCH / ".corpora")
    args = parser.parse_args()
    grid = GRID
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in GRID]
        if unknown:
            raise SystemExit(f"error: not tunable here: {', '.join(unknown)} (known: {', '.join(GRID)})")
        grid = {name: GRID[name] for name in wanted}
    queries = load_queries(args.queries)
    roots = corpus_roots(queries, args.root.resolve())
    ensure_indexes(roots, IndexOptions())
    gathered = gather(queries, roots, args.mode)
    print(f"{len(gathered)} queries, {len(roots)} corpora, mode {args.mode}")
    print(line("default", score(gathered, RankingConfig())))
    if args.per_file:
        print("| at most per file | files in the top ten | NDCG@10 | " + " / ".join(
            sorted({g.query.category for g in gathered})) + " | binary | relevant only | file level |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for n in [0, *(int(v) for v in args.per_file.split(","))]:
            print(breadth(gathered, n), flush=True)
        return 0
    if args.score is not None:
        for text in args.score:
            print(line(text, score(gathered, parse_overrides(text))))
        return 0
    first, second = halves(gathered)
    for name, tuned_on, held_out in (("half 1 -> half 2", first, second), ("half 2 -> half 1", second, first)):
        config, tuned = ascend(gathered, grid, tuned_on)
        before = score(gathered, RankingConfig(), tuned_on).ndcg
        held_before = score(gathered, RankingConfig(), held_out).ndcg
        held_after = score(gathered, config, held_out).ndcg
        print(f"{name}: {changes(config)}; tuned half {before:.4f} -> {tuned:.4f}, "
              f"other half {held_before:.4f} -> {held_after:.4f}", flush=True)
    config, _ = ascend(gathered, grid, None)
    print(f"all corpora: {changes(config)}")
    print(line("tuned on all", score(gathered, config)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
