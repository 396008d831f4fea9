"""Indexing and query speed on real codebases of three sizes.

Prints, in one run: seconds from `codesearch index` starting to the first query's
answer (the query is started as soon as the index folder exists, waits for the
full-text tier and is answered by the indexing process), the full-text tier's
own time, full index time and embedded chunks/s, peak RSS of the index process,
query time while embedding, no-change and one-file-changed re-index times, cold
CLI query time (fresh process, no warm server), warm CLI query time (through the
warm query server), warm in-process p50/p95, and the index time of a second
copy of the same code (a clone or worktree: vectors from the shared cache).

The codebases are real code we did not write, taken from what is installed at
benchmark time (site-packages of this venv) and copied into a temp folder:

    python bench/bench_index.py                       # small + medium + large
    python bench/bench_index.py --sizes small --backend onnx
    python bench/bench_index.py --sizes thousand large --first-answer-only --first-runs 9
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

SITE = Path(sysconfig.get_paths()["purelib"])
# Packages that make up each size (pure-Python, installed with the project).
SIZES = {
    "small": ["pathspec", "typer"],  # ~65 files
    "medium": ["rich", "sympy/core"],  # ~190 files
    "large": ["networkx", "rich", "typer", "pathspec", "sympy/core", "sympy/printing"],  # ~910 files
    # About 1,100 source files (Python, C++ and C headers of onnx): the size the
    # first-answer target names. Measured with --first-answer-only.
    "thousand": ["pip", "onnx"],
}
QUERIES = [
    "read a config file and merge defaults",
    "render a table with borders",
    "parse command line options",
    "ProgressBar",
    "convert a color name to rgb",
    "wrap long lines of text to a width",
    "cache the result of a function",
    "escape markup in a string",
]


def make_corpus(size: str, dest: Path) -> Path:
    root = dest / size
    for package in SIZES[size]:
        src = SITE / package
        if src.is_dir():
            shutil.copytree(src, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def run_timed(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak RSS of the child in MB, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=err,
                                env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(args)} failed: {err.read().decode()[-400:]}")
        return elapsed, usage.ru_maxrss // 1024, out.read().decode()


def cli(*args: str) -> list[str]:
    # The installed console script, as a user types it: `python -m` would put the corpus
    # folder first on sys.path and import its copies of typer and rich.
    script = Path(sys.executable).with_name("codesearch")
    return [str(script), *args] if script.is_file() else [sys.executable, "-P", "-m", "codesearch", *args]


def query_times(root: Path, daemon: bool, repeat: int) -> list[float]:
    env = {} if daemon else {"CODESEARCH_NO_DAEMON": "1"}
    times = []
    for i in range(repeat):
        q = QUERIES[i % len(QUERIES)]
        elapsed, _, _ = run_timed(cli("query", q, "--json", "-k", "10"), root, env)
        times.append(elapsed)
    return times


def in_process_times(root: Path, repeat: int) -> list[float]:
    from codesearch.search.searcher import Searcher, SearchOptions

    searcher = Searcher(root / ".codesearch")
    searcher.search(QUERIES[0], SearchOptions())  # load model and tables
    times = []
    for i in range(repeat):
        t = time.perf_counter()
        searcher.search(QUERIES[i % len(QUERIES)], SearchOptions())
        times.append(time.perf_counter() - t)
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def first_answer(root: Path, backend: str) -> tuple[float, dict[str, object], subprocess.Popen[bytes], float]:
    """Start a full `codesearch index` and query as soon as its folder exists.

    The query waits for the full-text tier and is answered by the indexing process
    itself. Returns (seconds from index start to the printed answer, the answer,
    the still-running index process, its start time).
    """
    started = time.perf_counter()
    out = tempfile.TemporaryFile()  # noqa: SIM115 (read when the process ends, in finish())
    proc = subprocess.Popen(cli("index", "--json", "--backend", backend), cwd=root, stdout=out,
                            stderr=subprocess.DEVNULL)
    proc.out = out  # type: ignore[attr-defined]
    while not (root / ".codesearch" / "lock").exists():
        time.sleep(0.01)
    answer = subprocess.run(cli("query", QUERIES[0], "--json", "-k", "10"), cwd=root,
                            capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(answer.stdout), proc, started


def finish(proc: subprocess.Popen[bytes], started: float) -> tuple[float, int, dict[str, object]]:
    """(wall seconds since start, peak RSS in MB, the index's JSON summary)."""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError("codesearch index failed")
    out = proc.out  # type: ignore[attr-defined]
    out.seek(0)
    return elapsed, usage.ru_maxrss // 1024, json.loads(out.read().decode())


def first_answers(root: Path, backend: str, runs: int) -> list[float]:
    """Seconds to the first answer of `runs` first builds (each killed once answered)."""
    times = []
    for _ in range(runs):
        seconds, _, proc, _ = first_answer(root, backend)
        proc.kill()
        proc.wait()
        shutil.rmtree(root / ".codesearch")
        times.append(seconds)
    return times


def corpus_size(root: Path) -> tuple[int, float]:
    """(source files, MB) as `codesearch index` finds them."""
    from codesearch.source.discover import DiscoveryOptions, discover

    found = list(discover(root, DiscoveryOptions()))
    return len(found), sum(f.size for f in found) / 1e6


def first_answer_only(size: str, workdir: Path, backend: str, runs: int) -> dict[str, object]:
    root = make_corpus(size, workdir)
    files, megabytes = corpus_size(root)
    times = first_answers(root, backend, runs)
    return {"size": size, "files": files, "MB": round(megabytes, 1), "backend": backend,
            "first_answer_s": round(statistics.median(times), 2),
            "first_answer_min_max_s": [round(min(times), 2), round(max(times), 2)], "runs": runs}


def bench_size(size: str, workdir: Path, backend: str, repeat: int, runs: int) -> dict[str, object]:
    root = make_corpus(size, workdir)
    files, megabytes = corpus_size(root)
    # A first answer is a matter of seconds on a shared machine: the median of several.
    firsts = first_answers(root, backend, runs - 1)
    first_s, answer, proc, started = first_answer(root, backend)
    firsts.append(first_s)
    during = query_times(root, daemon=True, repeat=max(3, repeat // 4))  # the indexer answers
    full_s, full_rss, summary = finish(proc, started)
    embedded = int(summary["embedded"])  # type: ignore[call-overload]
    embed_s = full_s - float(summary["seconds_lexical"])  # type: ignore[arg-type]
    nochange_s, _, _ = run_timed(cli("index", "-q", "--backend", backend), root)
    target = sorted(root.rglob("*.py"))[len(list(root.rglob("*.py"))) // 2]
    target.write_text(target.read_text() + "\n\ndef benchmark_added_helper(value):\n    return value\n")
    onefile_s, _, _ = run_timed(cli("index", "-q", "--backend", backend), root)
    cold = query_times(root, daemon=False, repeat=max(5, repeat // 2))
    run_timed(cli("query", "warm up", "--json"), root)  # starts the warm server
    warm = query_times(root, daemon=True, repeat=repeat)
    inproc = in_process_times(root, repeat * 4)
    run_timed(cli("stop-server"), root)
    # A second clone / worktree of the same code: every vector comes from the shared cache.
    clone = workdir / f"{size}-clone"
    shutil.copytree(root, clone, ignore=shutil.ignore_patterns(".codesearch"))
    clone_s, _, out = run_timed(cli("index", "--json", "--backend", backend), clone)
    return {
        "size": size, "files": files, "MB": round(megabytes, 1), "chunks": summary["chunks"],
        "backend": backend, "first_answer_s": round(statistics.median(firsts), 2),
        "first_answer_min_max_s": [round(min(firsts), 2), round(max(firsts), 2)],
        "queryable_s": summary["seconds_lexical"], "full_index_s": round(full_s, 1),
        "embed_chunks_per_s": round(embedded / embed_s, 1) if embed_s > 0 else 0.0,
        "peak_rss_mb": full_rss,
        "query_while_embedding_p50_s": round(pct(during, 50), 3),
        "reindex_nochange_s": round(nochange_s, 2), "reindex_onefile_s": round(onefile_s, 2),
        "cold_query_p50_s": round(statistics.median(cold), 3),
        "cold_query_p95_s": round(pct(cold, 95), 3),
        "warm_cli_p50_s": round(pct(warm, 50), 3), "warm_cli_p95_s": round(pct(warm, 95), 3),
        "inprocess_p50_ms": round(pct(inproc, 50) * 1000, 1),
        "inprocess_p95_ms": round(pct(inproc, 95) * 1000, 1),
        "clone_index_s": round(clone_s, 2), "clone_from_cache": json.loads(out).get("from_cache"),
        "first_answer_pending": answer.get("vectors_pending"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "medium", "large"], choices=list(SIZES))
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--repeat", type=int, default=12)
    parser.add_argument("--first-runs", type=int, default=5,
                        help="first builds timed to their first answer (median reported)")
    parser.add_argument("--first-answer-only", action="store_true",
                        help="measure only the first answer (no embedding, no queries)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="codesearch-bench-") as tmp:
        # A private embedding cache: the first index of each corpus embeds for real.
        os.environ["CODESEARCH_CACHE_DIR"] = str(Path(tmp) / "embedding-cache")
        for size in args.sizes:
            if args.first_answer_only:
                rows.append(first_answer_only(size, Path(tmp), args.backend, args.first_runs))
            else:
                rows.append(bench_size(size, Path(tmp), args.backend, args.repeat, args.first_runs))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    keys = list(rows[0])
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(" | ".join(keys))
    print(" | ".join("---" for _ in keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))


if __name__ == "__main__":
    main()
