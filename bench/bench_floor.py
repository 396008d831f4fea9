"""The floor of a first build's full-text answer: chunking alone, with no storage (issue 18).

Runs, in a fresh process per run, what `codesearch index` does before it touches LanceDB
(the CLI's imports, the prestarted workers, discovery, the chunking pool of a first
build) and stops when every row is in this process's memory. No LanceDB import, no
writes, no search: whatever the rest of the pipeline does, a first answer cannot come
sooner than this. Prints the seconds from process start, and this process's own CPU
(the workers' is not in it), per run; on the repository `bench_speed.py` uses (pip +
onnx from this venv, about 1,100 files) unless a folder is given.

    python bench/bench_floor.py --runs 3
    python bench/bench_floor.py --runs 3 --no-terms   # also: terms left out (what a free analyser would save)
    python bench/bench_floor.py path/to/repo
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_index import make_corpus

# The child: times are from its own start (/proc), as a user's clock would run.
CHILD = r"""
import itertools, json, os, sys, time
with open("/proc/self/stat") as f:
    started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
with open("/proc/uptime") as f:
    began = time.time() - (float(f.read().split()[0]) - started)
from pathlib import Path
import codesearch.cli.main  # noqa: F401 - the CLI's imports, as `codesearch index` has them
import codesearch.index.rows as rows
if sys.argv[2] == "no-terms":
    rows.lexical_text = lambda text: ""
from codesearch.index.build import FIRST_FILES, IndexOptions, budget_spec, index_profile, wanted_manifest
from codesearch.source.discover import DiscoveryOptions, DiscoveryStats, discover
rows.prestart_workers()
spec = budget_spec(index_profile(wanted_manifest(IndexOptions(), None)))
found = discover(Path(sys.argv[1]), DiscoveryOptions(), DiscoveryStats())
first = list(itertools.islice(found, FIRST_FILES))
pool = rows.RowPool([rows.ChunkJob(f) for f in first], spec).start()
rest = list(found)
pool.extend([rows.ChunkJob(f) for f in rest])
count = sum(batch.columns.rows for batch in pool.results())
done = time.time() - began
cpu = sum(os.times()[:2])
pool.close()
print(json.dumps({"files": len(first) + len(rest), "rows": count, "seconds": done, "cpu": cpu}))
"""


def one_run(root: Path, mode: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), mode], capture_output=True,
                         text=True, check=True, env={**os.environ, "CODESEARCH_NO_DAEMON": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, help="repository (default: pip + onnx)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-terms", action="store_true", help="also run with the term analysis left out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.folder.resolve() if args.folder else make_corpus("thousand", Path(tmp))
        modes = ["full", "no-terms"] if args.no_terms else ["full"]
        for mode in modes:
            runs = [one_run(root, mode) for _ in range(args.runs)]
            seconds = [r["seconds"] for r in runs]
            print(f"{mode}: {runs[0]['files']} files, {runs[0]['rows']} rows in memory after "
                  f"{statistics.median(seconds):.2f} s (median; {min(seconds):.2f}-{max(seconds):.2f}), "
                  f"parent CPU {statistics.median(r['cpu'] for r in runs):.2f} s; "
                  f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
