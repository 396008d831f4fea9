"""Local engine vs the ray engine on one corpus (docs/scale.md).

    python bench/bench_ray.py                  # corpus: bench/.corpora/jinja2
    python bench/bench_ray.py --corpus clap --workers 1 2

Each run indexes a fresh copy of the corpus with the shared embedding cache off and
prints wall time, chunks embedded and chunks/s; for Ray also the cluster start-up
(`ray.init`, paid once per process) and the vectors' largest difference from the local
engine's. Run it alone: on 2 cores any other work skews the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ["CODESEARCH_EMBED_CACHE"] = "0"  # a first index, honestly measured
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from codesearch.api import Index  # noqa: E402
from codesearch.store.tables import IndexStore, vector_columns  # noqa: E402

BENCH = Path(__file__).resolve().parent


def fresh_copy(corpus: Path, dest: Path) -> Path:
    shutil.copytree(corpus, dest, ignore=shutil.ignore_patterns(".codesearch"))
    return dest


def vectors(root: Path) -> dict[str, np.ndarray]:
    store = IndexStore(root / ".codesearch")
    assert store.vectors is not None
    columns = vector_columns(store.vectors)
    return dict(zip(columns["content_hash"], columns["vector"], strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="jinja2")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    corpus = BENCH / ".corpora" / args.corpus
    if not corpus.is_dir():
        print(f"error: no corpus at {corpus}: run bench/prepare_corpora.py", file=sys.stderr)
        return 1
    from codesearch.index.distributed import RayEngine, RayOptions, start_ray

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        rows = []
        local = fresh_copy(corpus, Path(tmp) / "local")
        t = time.perf_counter()
        report = Index(local).update()
        rows.append(("local", time.perf_counter() - t, report.embedded, 0.0, 0.0))
        reference = vectors(local)
        t = time.perf_counter()
        start_ray(RayOptions(workers=max(args.workers)))
        startup = time.perf_counter() - t
        for n in args.workers:
            copy = fresh_copy(corpus, Path(tmp) / f"ray{n}")
            t = time.perf_counter()
            report = Index(copy).update(engine=RayEngine(RayOptions(workers=n)))
            got = vectors(copy)
            diff = max(float(np.abs(got[h] - reference[h]).max()) for h in reference)
            rows.append((f"ray, {n} worker{'s' if n > 1 else ''}", time.perf_counter() - t,
                         report.embedded, startup, diff))
    print(f"corpus {args.corpus}, embedding cache off, {os.cpu_count()} cores")
    print(f"{'engine':<16} {'wall s':>7} {'chunks':>7} {'chunks/s':>9} {'ray.init s':>10} {'max |Δv|':>9}")
    for name, seconds, embedded, start, diff in rows:
        print(f"{name:<16} {seconds:>7.1f} {embedded:>7} {embedded / seconds:>9.1f} {start:>10.1f} {diff:>9.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
