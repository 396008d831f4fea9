"""Compare ranking configurations on the development benchmark, side by side.

    python bench/sweep.py                                   # the default ranking, hybrid and text
    python bench/sweep.py "saturation=True" "stem_boost=0.5,path_weight=0"
    python bench/sweep.py --mode text --by language "symbol_tiers=False"

Each argument is one configuration: comma-separated RankingConfig overrides on top of the
defaults (`name=value`; True/False, numbers, or words). Prints NDCG@10 overall, per
category and per language (or corpus) for every configuration, the default first, so a
change is kept only when it helps overall without hurting any category by more than 0.01.
Indexes are built (or brought up to date) first, like `codesearch eval`.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import fields, replace
from pathlib import Path

from codesearch.core.types import RankingConfig
from codesearch.eval.benchmark import EvalConfig, corpus_roots, ensure_indexes, run_configs
from codesearch.eval.evaluate import EvalReport, load_queries
from codesearch.index.build import IndexOptions

BENCH = Path(__file__).resolve().parent


def parse_overrides(text: str) -> RankingConfig:
    known = {f.name for f in fields(RankingConfig)}
    values: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, raw = item.partition("=")
        if name not in known:
            raise SystemExit(f"error: unknown ranking setting {name!r} (known: {', '.join(sorted(known))})")
        try:
            values[name] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            values[name] = raw
    return replace(RankingConfig(), **values)  # type: ignore[arg-type]


def table(reports: list[EvalReport], by: str) -> str:
    groups = sorted({g for r in reports for g in getattr(r, f"by_{by}")})
    cats = sorted({g for r in reports for g in r.by_category})
    head = ["config", "NDCG", "R@1", "R@5", *cats, *groups]
    rows = [head]
    for r in reports:
        rows.append([r.label, f"{r.overall.ndcg_at_k:.3f}", f"{r.overall.recall_at_1:.3f}",
                     f"{r.overall.recall_at_5:.3f}",
                     *(f"{r.by_category[c].ndcg_at_k:.3f}" if c in r.by_category else "-" for c in cats),
                     *(f"{getattr(r, f'by_{by}')[g].ndcg_at_k:.3f}" if g in getattr(r, f"by_{by}") else "-"
                       for g in groups)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in
                               enumerate(zip(row, widths, strict=True))) for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", help="name=value[,name=value...] per configuration")
    parser.add_argument("--mode", action="append", help="hybrid and/or text (default: both)")
    parser.add_argument("--by", choices=("language", "corpus"), default="language")
    parser.add_argument("--queries", type=Path, default=BENCH / "queries")
    parser.add_argument("--root", type=Path, default=BENCH / ".corpora")
    args = parser.parse_args()
    queries = load_queries(args.queries)
    roots = corpus_roots(queries, args.root.resolve())
    ensure_indexes(roots, IndexOptions())
    configs = []
    for mode in args.mode or ["hybrid", "text"]:
        configs.append(EvalConfig(f"{mode} default", mode, RankingConfig()))
        for text in args.configs:
            configs.append(EvalConfig(f"{mode} {text}", mode, parse_overrides(text)))
    reports = run_configs(queries, roots, configs)
    print(f"{len(queries)} queries, {len(roots)} corpora")
    print(table(reports, args.by))
    return 0


if __name__ == "__main__":
    sys.exit(main())
