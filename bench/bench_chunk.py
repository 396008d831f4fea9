"""Chunking throughput over real code nobody here wrote.

Corpus: the installed site-packages (.py, .js and C/C++ sources and headers),
plus every file with a detected language under bench/.corpora/ when
bench/prepare_corpora.py has fetched the development corpora (JS/TS from npm,
Go/Rust from Debian). A deterministic sample (`--limit`) keeps the run short on
a shared machine.

Measures read + chunk_file per file (page cache warmed first), single process
and with a process pool, and prints files/s, MB/s and chunks/s.

    python bench/bench_chunk.py --limit 4000 --workers 2
"""

from __future__ import annotations

import argparse
import sysconfig
import time
import zlib
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

from codesearch.source.chunk import ChunkBudget, chunk_file
from codesearch.source.languages import detect_language

SITE_SUFFIXES = {".py", ".js", ".c", ".h", ".cc", ".cpp", ".hpp"}
MAX_BYTES = 1_000_000  # the indexer's default file size limit


def corpus(limit: int) -> list[tuple[str, str]]:
    """(path, language) pairs: a stable sample of site-packages plus bench/.corpora."""
    site = Path(sysconfig.get_paths()["purelib"])
    found: list[tuple[str, str]] = []
    for p in site.rglob("*"):
        if p.suffix in SITE_SUFFIXES and p.is_file() and 0 < p.stat().st_size <= MAX_BYTES:
            found.append((str(p), detect_language(p.name) or "text"))
    found.sort(key=lambda item: zlib.crc32(item[0].encode()))
    sample = found[:limit]
    extra = Path(__file__).resolve().parent / ".corpora"
    if extra.is_dir():
        for p in sorted(extra.rglob("*")):
            if p.is_file() and 0 < p.stat().st_size <= MAX_BYTES:
                lang = detect_language(p.name)
                if lang and lang != "text":
                    sample.append((str(p), lang))
    return sample


def chunk_one(item: tuple[str, str]) -> tuple[str, int, int]:
    """(language, bytes, chunks) for one file, read and chunked as the indexer does."""
    path, language = item
    raw = Path(path).read_bytes()
    text = raw.decode("utf-8", errors="replace")
    return language, len(raw), len(chunk_file(path, text, language, ChunkBudget()))


def run_single(items: list[tuple[str, str]]) -> tuple[float, list[tuple[str, int, int, float]]]:
    rows: list[tuple[str, int, int, float]] = []
    started = time.perf_counter()
    for item in items:
        t0 = time.perf_counter()
        lang, size, n = chunk_one(item)
        rows.append((lang, size, n, time.perf_counter() - t0))
    return time.perf_counter() - started, rows


def run_pool(items: list[tuple[str, str]], workers: int) -> tuple[float, int, int]:
    started = time.perf_counter()  # pool start-up included: the indexer pays it too
    with Pool(workers) as pool:
        results = list(pool.imap_unordered(chunk_one, items, chunksize=16))
    elapsed = time.perf_counter() - started
    return elapsed, sum(r[1] for r in results), sum(r[2] for r in results)


def fmt_row(name: str, files: int, size: int, chunks: int, seconds: float) -> str:
    mb = size / 1e6
    return (
        f"{name:<22}{files:>7}{mb:>9.1f}{chunks:>9}{seconds:>9.2f}"
        f"{files / seconds:>10.0f}{mb / seconds:>8.2f}{chunks / seconds:>10.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=4000, help="site-packages files sampled (default 4000)")
    parser.add_argument("--workers", type=int, default=2, help="process pool size (default 2)")
    args = parser.parse_args()

    items = corpus(args.limit)
    for path, _ in items:  # warm the page cache so both runs measure chunking, not the disk
        Path(path).read_bytes()

    single_s, rows = run_single(items)
    per_lang: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for lang, size, n, secs in rows:
        acc = per_lang[lang]
        acc[0] += 1
        acc[1] += size
        acc[2] += n
        acc[3] += secs
    total_bytes = sum(r[1] for r in rows)
    total_chunks = sum(r[2] for r in rows)
    pool_s, pool_bytes, pool_chunks = run_pool(items, args.workers)

    header = f"{'':<22}{'files':>7}{'MB':>9}{'chunks':>9}{'seconds':>9}{'files/s':>10}{'MB/s':>8}{'chunks/s':>10}"
    print(header)
    print("-" * len(header))
    for lang, (files, size, n, secs) in sorted(per_lang.items(), key=lambda kv: -kv[1][1]):
        print(fmt_row(f"  {lang}", int(files), int(size), int(n), max(secs, 1e-9)))
    print(fmt_row("single process", len(items), total_bytes, total_chunks, single_s))
    print(fmt_row(f"pool ({args.workers} workers)", len(items), pool_bytes, pool_chunks, pool_s))
    slowest = sorted(rows, key=lambda r: -r[3])[:1]
    if slowest:
        print(f"slowest file: {slowest[0][3] * 1000:.0f} ms ({slowest[0][1] / 1e3:.0f} KB, {slowest[0][0]})")


if __name__ == "__main__":
    main()
