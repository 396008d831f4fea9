"""This code against an earlier revision, runs alternating: the full-text tier's first
answer, cold and warm queries.

On a shared machine a single benchmark run swings by 30% as the neighbours' load
changes; alternating the two versions run by run puts both under the same load. The
other revision is exported with `git archive` into a temporary folder and put first on
PYTHONPATH (its `codesearch` package shadows the installed one; the console script and
the rest of the environment are shared).

    python bench/bench_ab.py HEAD~3                 # full-text tier, 6 builds each
    python bench/bench_ab.py a408fb1 --what cold warm --runs 12
    python bench/bench_ab.py HEAD~1 --index-args    # first answer of the default index

`first`: from `codesearch index` starting (with `--lexical-only` unless --index-args is
given) until a query started with it is answered (the build runs on; the default index
is killed once the answer is in). `cold` / `warm`: `codesearch query` as a whole process
with no server / with the version's own warm server (started anew for each run). Medians in seconds or milliseconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_index import QUERIES, cli, corpus_size, make_corpus
from bench_speed import wait_for_server

REPO = Path(__file__).resolve().parent.parent
WARM_UP_QUERIES = 2  # unmeasured, after a version's server starts
WARM_QUERIES = 5  # measured per run and version


def export(revision: str, dest: Path) -> Path:
    """The `codesearch` package of `revision`, in dest (for PYTHONPATH)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "codesearch"],
                             check=True, capture_output=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def environment(pythonpath: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CODESEARCH_NO_DAEMON")}
    env["CODESEARCH_EMBED_CACHE"] = "0"
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return {**env, **extra}


def stop_servers() -> None:
    subprocess.run(["pkill", "-f", "codesearch serve"], capture_output=True)
    time.sleep(0.3)


def first_answer(root: Path, env: dict[str, str], index_args: list[str]) -> float:
    shutil.rmtree(root / ".codesearch", ignore_errors=True)
    started = time.perf_counter()
    build = subprocess.Popen(cli("index", "--json", "-q", *index_args), cwd=root, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    while not (root / ".codesearch" / "lock").exists():
        time.sleep(0.01)
    subprocess.run(cli("query", QUERIES[0], "--mode", "text", "--json"), cwd=root, env=env,
                   check=True, capture_output=True)
    seconds = time.perf_counter() - started
    if "--lexical-only" in index_args:
        build.wait()
    else:
        os.killpg(build.pid, signal.SIGKILL)
        build.wait()
    stop_servers()
    return seconds


def query_ms(root: Path, env: dict[str, str], number: int) -> float:
    started = time.perf_counter()
    subprocess.run(cli("query", QUERIES[number % len(QUERIES)], "-k", "10"), cwd=root, env=env,
                   check=True, capture_output=True)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare with (e.g. HEAD~1)")
    parser.add_argument("--what", nargs="+", choices=("first", "cold", "warm"), default=["first"])
    parser.add_argument("--runs", type=int, default=6, help="runs of each version")
    parser.add_argument("--index-args", nargs="*", default=["--lexical-only"],
                        help="after `codesearch index` for `first` (none: the default index)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codesearch-ab-") as tmp:
        other = export(args.revision, Path(tmp) / "other")
        versions = {args.revision: environment(other), "this code": environment(None)}
        root = make_corpus("thousand", Path(tmp))
        files, megabytes = corpus_size(root)
        print(f"{files} files, {megabytes:.1f} MB, {os.cpu_count()} cores; {args.runs} runs each, "
              "alternating")
        for what in args.what:
            if what != "first":  # one complete index for the queries, built by this code
                stop_servers()
                shutil.rmtree(root / ".codesearch", ignore_errors=True)
                subprocess.run(cli("index", "-q", "--lexical-only"), cwd=root, check=True,
                               env=environment(None))
            times: dict[str, list[float]] = {name: [] for name in versions}
            for run in range(args.runs):
                for name, env in versions.items():
                    if what == "first":
                        times[name].append(first_answer(root, env, args.index_args))
                    elif what == "cold":
                        times[name].append(query_ms(root, {**env, "CODESEARCH_NO_DAEMON": "1"}, run))
                    else:  # each version's own server, started by a cold query
                        stop_servers()
                        query_ms(root, env, run)
                        wait_for_server(root)
                        for number in range(WARM_UP_QUERIES):
                            query_ms(root, env, number)
                        times[name] += [query_ms(root, env, run + i) for i in range(WARM_QUERIES)]
            unit = "s" if what == "first" else "ms"
            for name, values in times.items():
                print(f"{what:5s} {name:>12s}: median {statistics.median(values):.2f} {unit}  "
                      f"(min {min(values):.2f}, max {max(values):.2f})")
        stop_servers()


if __name__ == "__main__":
    main()
