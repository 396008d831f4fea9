"""Speed of each tier, as whole processes (issue 18): one command, one table.

For the default index (MiniLM, with the static interim tier), the static model as the
index model, the default without the interim tier (how it was before) and the full-text
tier alone, on a repository of about 1,100 files (pip + onnx from this venv, as
`bench_index.py --sizes thousand`), with a fresh embedding cache
(CODESEARCH_EMBED_CACHE=0):

- `lexical_s`: from `codesearch index` starting to a query's answer (the query starts
  with the index and waits for the full-text tier);
- `vectors_s`: until vector search answers for every chunk (the interim tier's vectors,
  or the index model's when it has no interim tier);
- `index_s`, `chunks_per_s` (embedded by the index model after the full-text tier),
  `peak_rss_mb` (largest process);
- `warm_ms` / `cold_ms`: `codesearch query` medians as whole processes, with the warm
  server running (the thin client) / with none (the query searches in its own process,
  then starts the server); and
  `warm_full_cli_ms`, the same warm query through the full CLI (`python -m codesearch`,
  the path every query took before the thin client);
- `ndcg10`: the development benchmark (`codesearch eval bench/queries`), hybrid (text for
  the full-text tier), with `--ndcg`.

    python bench/bench_speed.py --runs 3 --queries 21 --ndcg

Timings on a shared machine: run when `uptime` is low; medians of `--runs`; the load
average is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_index import QUERIES, cli, corpus_size, make_corpus, pct, run_timed

BENCH = Path(__file__).resolve().parent
# The default without its interim tier: what `codesearch index` did before it had one.
NO_INTERIM = ("from codesearch import Index, IndexOptions; "
              "Index('.').update(options=IndexOptions(interim_model=None))")


@dataclass(frozen=True)
class Tier:
    name: str
    index_args: tuple[str, ...]  # after `codesearch index`; () with `python` for NO_INTERIM
    eval_mode: str
    model: str | None  # for the eval; None: the corpora's existing (default) indexes
    python: str | None = None


TIERS = (
    Tier("default (minilm + static interim)", (), "hybrid", None),
    Tier("default without interim (before)", (), "hybrid", None, python=NO_INTERIM),
    Tier("static only (-m minilm-static)", ("-m", "minilm-static"), "hybrid", "minilm-static"),
    Tier("full-text only (--lexical-only)", ("--lexical-only",), "text", None),
)


def index_command(tier: Tier) -> list[str]:
    if tier.python:
        return [sys.executable, "-P", "-c", tier.python]
    return cli("index", "--json", "-q", *tier.index_args)


def manifest(root: Path) -> dict[str, object]:
    try:
        return json.loads((root / ".codesearch" / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def timed_build(root: Path, tier: Tier) -> dict[str, float]:
    """One first build, timed from outside: the first answer, the moment every chunk has a
    vector that search uses, the end; peak RSS of the largest process."""
    shutil.rmtree(root / ".codesearch", ignore_errors=True)
    started = time.perf_counter()
    proc = subprocess.Popen(index_command(tier), cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while not (root / ".codesearch" / "lock").exists():
        time.sleep(0.01)
    subprocess.run(cli("query", QUERIES[0], "--mode", "text", "--json"), cwd=root, check=True,
                   capture_output=True)
    lexical = time.perf_counter() - started
    vectors = None
    while True:
        done = proc.poll() is not None
        if vectors is None and "interim" in manifest(root).get("extra", {}):  # type: ignore[operator]
            vectors = time.perf_counter() - started
        if done:
            break
        time.sleep(0.05)
    total = time.perf_counter() - started
    info = manifest(root)
    if proc.returncode or not info:
        raise RuntimeError(f"{tier.name}: index failed ({proc.returncode})")
    # The build hands its query server over to a standalone one (it answered a query):
    # stopped here, or the next build would share the cores with its start-up.
    wait_for_server(root)
    run_timed(cli("stop-server"), root)
    time.sleep(1.5)
    embedded_tier = tier.index_args != ("--lexical-only",)
    return {"lexical_s": lexical, "vectors_s": vectors if vectors is not None else
            (total if embedded_tier else float("nan")), "index_s": total,
            "chunks": float(info.get("chunks", 0))}  # type: ignore[arg-type]


def peak_rss_and_rate(root: Path, tier: Tier) -> tuple[int, float]:
    """Peak RSS (MB) of a whole first build, and the index model's chunks/s after the
    full-text tier (from the index summary; the Python entry has none)."""
    shutil.rmtree(root / ".codesearch", ignore_errors=True)
    _, rss, out = run_timed(index_command(tier), root)
    if tier.python:
        return rss, float("nan")
    summary = json.loads(out)
    embed_s = float(summary["seconds"]) - float(summary.get("seconds_interim") or summary["seconds_lexical"])
    rate = summary["embedded"] / embed_s if summary["embedded"] and embed_s > 0 else float("nan")
    return rss, rate


def query_ms(root: Path, queries: int) -> dict[str, float]:
    """Whole-process query medians: warm thin client, warm full CLI, cold (no server)."""
    run_timed(cli("query", "warm up", "--json"), root)  # starts the server after answering
    wait_for_server(root)
    warm = [run_timed(cli("query", QUERIES[i % len(QUERIES)]), root)[0] for i in range(queries)]
    # The full CLI (typer, rich, the search client), the path every query took before
    # the thin client; `python -m codesearch` takes the thin client too.
    full_cli = [sys.executable, "-P", "-c", "from codesearch.cli.main import main; main()", "query"]
    warm_full = [run_timed([*full_cli, QUERIES[i % len(QUERIES)]], root)[0] for i in range(queries)]
    cold = []
    for i in range(max(3, queries // 4)):
        run_timed(cli("stop-server"), root)
        time.sleep(0.3)
        cold.append(run_timed(cli("query", QUERIES[i % len(QUERIES)]), root)[0])
        wait_for_server(root)  # the cold query starts one once it has answered
    run_timed(cli("stop-server"), root)
    return {"warm_ms": statistics.median(warm) * 1000, "warm_p95_ms": pct(warm, 95) * 1000,
            "warm_full_cli_ms": statistics.median(warm_full) * 1000,
            "cold_ms": statistics.median(cold) * 1000}


def wait_for_server(root: Path, timeout: float = 120.0) -> None:
    from codesearch.serve import daemon

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.request(root / ".codesearch", {"op": "ping"}, timeout=2.0) is not None:
            return
        time.sleep(0.1)
    raise RuntimeError("the warm server did not start")


def dev_ndcg(tier: Tier, workdir: Path) -> float:
    """NDCG@10 of the tier on the development benchmark."""
    root = BENCH / ".corpora"
    if tier.model:  # its own indexes, in a copy: the shared corpora keep the default's
        copy = workdir / "corpora"
        if not copy.exists():
            shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".codesearch"))
        root = copy
    args = ["eval", str(BENCH / "queries"), "--root", str(root), "--mode", tier.eval_mode, "--json"]
    if tier.model:
        args += ["-m", tier.model]
    done = subprocess.run(cli(*args), capture_output=True, text=True, check=True)
    reports = json.loads(done.stdout)["reports"]
    return float(next(r for r in reports if "+ ranking" in r["label"])["overall"]["ndcg@10"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="first builds per tier (medians)")
    parser.add_argument("--queries", type=int, default=21, help="warm queries per tier")
    parser.add_argument("--ndcg", action="store_true", help="also the dev benchmark's NDCG@10")
    parser.add_argument("--tiers", nargs="+", type=int, default=list(range(len(TIERS))),
                        help="which rows (0-based) to measure")
    args = parser.parse_args()
    os.environ["CODESEARCH_EMBED_CACHE"] = "0"
    os.environ.pop("CODESEARCH_NO_DAEMON", None)
    rows = []
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="codesearch-speed-") as tmp:
        root = make_corpus("thousand", Path(tmp))
        files, megabytes = corpus_size(root)
        for number in args.tiers:
            tier = TIERS[number]
            builds = [timed_build(root, tier) for _ in range(args.runs)]
            row: dict[str, object] = {"tier": tier.name}
            for key in ("lexical_s", "vectors_s", "index_s"):
                row[key] = round(statistics.median(b[key] for b in builds), 2)
            row["chunks"] = int(builds[-1]["chunks"])
            rss, rate = peak_rss_and_rate(root, tier)
            row["chunks_per_s"] = round(rate, 1)
            row["peak_rss_mb"] = rss
            row.update({k: round(v) for k, v in query_ms(root, args.queries).items()})
            if args.ndcg:
                row["ndcg10"] = round(dev_ndcg(tier, Path(tmp)), 4)
            loads.append(os.getloadavg()[0])
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"{files} files, {megabytes:.1f} MB; load average {min(loads):.1f}-{max(loads):.1f} "
          f"on {os.cpu_count()} cores; medians of {args.runs} builds, {args.queries} warm queries")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    main()
