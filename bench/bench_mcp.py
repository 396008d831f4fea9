"""The MCP server's tools, measured in-process on a 1,000-file repository of real code.

    python bench/bench_mcp.py                     # corpora from bench/.corpora, >= 1,000 files
    python bench/bench_mcp.py --corpus clap --min-files 0
    python bench/bench_mcp.py --stdio             # also the round trip over stdio

Copies the largest prepared corpora (`bench/prepare_corpora.py`) into one temporary git
repository until it holds --min-files files, indexes it fully (the shared embedding
cache makes that quick when the corpora were indexed before), then reports:

- per tool, the latency of a warm call through `codesearch.serve.mcp.Tools` (what the
  server runs for each request, freshness check included): median and p95;
- tokens of a `search` answer at k=10 with the default budget (4,000), counted by the
  server's rule (4 characters of JSON per token), against the whole definitions the
  same ten hits hold (the "raw snippets");
- edit to visible: a function appended to a file, then the next `search` for its name
  (it must be among the hits), and how long until its vector is embedded too.

Timings on a shared machine vary; run it when the machine is quiet for figures to quote.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "bench" / ".corpora"
QUERIES = ROOT / "bench" / "queries"
sys.path.insert(0, str(ROOT))

# A definition to append, per extension: a name no corpus holds, in the file's language.
TEMPLATES = {
    ".py": "\n\ndef {snake}(items):\n    return [item for item in items if item]\n",
    ".rs": "\n\npub fn {snake}(items: &[u32]) -> usize {{\n    items.len()\n}}\n",
    ".js": "\n\nfunction {camel}(items) {{\n  return items.filter(Boolean);\n}}\n",
    ".ts": "\n\nexport function {camel}(items: string[]): string[] {{\n  return items.filter(Boolean);\n}}\n",
    ".go": "\n\nfunc {pascal}(items []int) int {{\n\treturn len(items)\n}}\n",
    ".php": "\n\nfunction {snake}($items)\n{{\n    return count($items);\n}}\n",
    ".lua": "\n\nlocal function {snake}(items)\n  return #items\nend\n",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and ".codesearch" not in p.parts)


def build_corpus(dest: Path, names: list[str], min_files: int) -> list[str]:
    """Copy corpora (largest first unless named) into `dest` until it holds min_files."""
    available = sorted((p for p in CORPORA.iterdir() if p.is_dir() and not p.name.startswith(".")),
                       key=count_files, reverse=True) if CORPORA.is_dir() else []
    chosen = [CORPORA / n for n in names] if names else available
    if not chosen:
        raise SystemExit("no corpora: run `python bench/prepare_corpora.py` first")
    used: list[str] = []
    total = 0
    for source in chosen:
        if not source.is_dir():
            raise SystemExit(f"no corpus {source.name} in {CORPORA}")
        shutil.copytree(source, dest / source.name, ignore=shutil.ignore_patterns(".codesearch"))
        used.append(source.name)
        total += count_files(dest / source.name)
        if not names and total >= min_files:
            break
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)
    return used


def load_queries(corpora: list[str]) -> list[str]:
    queries = []
    for name in corpora:
        path = QUERIES / f"{name}.jsonl"
        if path.exists():
            queries += [json.loads(line)["query"] for line in path.read_text().splitlines() if line.strip()]
    return queries or ["parse the command line arguments", "read a configuration file",
                       "escape html special characters", "convert a value to a string"]


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def wait_embedded(root: Any, timeout: float = 1800.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        manifest = root.index.manifest
        if not root.embedding and manifest is not None and manifest.vectors_pending == 0:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise SystemExit("background embedding did not finish")


def tool_latencies(tools: Any, root: Any, queries: list[str], repeat: int) -> dict[str, list[float]]:
    rng = random.Random(0)
    catalog = root.index.searcher().catalog
    names = [s for s, k in zip(catalog.symbols, catalog.kinds, strict=True) if s and k != "module"]
    symbols = rng.sample(names, min(len(names), repeat))
    spans = [(catalog.paths[i], catalog.starts[i], catalog.ends[i])
             for i in rng.sample(range(len(catalog)), min(len(catalog), repeat))]
    picks = {"q": itertools.cycle(queries), "s": itertools.cycle(symbols), "r": itertools.cycle(spans)}

    def span() -> Any:
        path, start, end = next(picks["r"])
        return tools.read_span(path, start, end)

    calls: dict[str, Callable[[], Any]] = {
        "search (hybrid, k=10)": lambda: tools.search(next(picks["q"]), k=10),
        "search (text, k=10)": lambda: tools.search(next(picks["q"]), k=10, mode="text"),
        "find_symbol": lambda: tools.find_symbol(next(picks["s"])),
        "read_span": span,
        "index_status": lambda: tools.index_status(),
        "freshness check alone": lambda: root.refresh(),
    }
    for fn in calls.values():  # warm: first model use, catalog, caches
        fn()
    return {name: timed(fn, repeat) for name, fn in calls.items()}


def token_figures(tools: Any, queries: list[str], chars_per_token: int) -> dict[str, float]:
    answers, raws, jsons, cuts, omitted = [], [], [], [], []
    for query in queries:
        answer = tools.search(query, k=10)
        answers.append(answer.tokens)
        hits = tools.workspace.roots[answer.hits[0].root].index.search(query, k=10) if answer.hits else []
        raws.append(sum(len(h.text) for h in hits) / chars_per_token)
        # What `codesearch query --json` prints for them: every field, whole definitions.
        jsons.append(len(json.dumps([dataclasses.asdict(h) for h in hits])) / chars_per_token)
        cuts.append(answer.cut)
        omitted.append(answer.omitted)
    return {"queries": len(queries), "answer_median": statistics.median(answers),
            "answer_p95": percentile(answers, 0.95), "answer_max": max(answers),
            "raw_median": statistics.median(raws), "raw_p95": percentile(raws, 0.95),
            "raw_max": max(raws), "json_median": statistics.median(jsons),
            "json_p95": percentile(jsons, 0.95), "json_max": max(jsons), "cut_mean": statistics.mean(cuts),
            "omitted_mean": statistics.mean(omitted)}


def edit_to_visible(tools: Any, root: Any, repo: Path, edits: int) -> dict[str, list[float]]:
    rng = random.Random(1)
    files = sorted(p for p in repo.rglob("*") if p.suffix in TEMPLATES and ".git" not in p.parts
                   and ".codesearch" not in p.parts)
    visible, embedded, new_file = [], [], []
    for n in range(edits):
        target = rng.choice(files)
        words = ["zq", "wombat", "ledger", f"n{n}"]
        snake = "_".join(words)
        camel = words[0] + "".join(w.title() for w in words[1:])
        text = TEMPLATES[target.suffix].format(snake=snake, camel=camel, pascal=camel[:1].upper() + camel[1:])
        query = {".js": camel, ".ts": camel, ".go": camel[:1].upper() + camel[1:]}.get(target.suffix, snake)
        with target.open("a") as handle:
            handle.write(text)
        started = time.perf_counter()
        answer = tools.search(query, k=5)
        visible.append((time.perf_counter() - started) * 1000)
        assert any(query in h.snippet for h in answer.hits), (target, query, answer)
        embedded.append(wait_embedded(root) * 1000 + visible[-1])
    for n in range(edits):
        path = repo / f"zq_new_{n}.py"
        path.write_text(f"def zq_brand_new_{n}(rows):\n    return sorted(rows)\n")
        started = time.perf_counter()
        answer = tools.search(f"zq_brand_new_{n}", k=3)
        new_file.append((time.perf_counter() - started) * 1000)
        assert any(f"zq_brand_new_{n}" in h.snippet for h in answer.hits), answer
        wait_embedded(root)
    return {"edited file, next search": visible, "edited file, vectors done": embedded,
            "new file, next search": new_file}


def stdio_latency(repo: Path, queries: list[str], repeat: int) -> list[float]:
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    async def run() -> list[float]:
        params = StdioServerParameters(command=sys.executable, args=["-m", "codesearch", "mcp", "--root", str(repo)],
                                       env=dict(os.environ))
        with open(os.devnull, "w") as devnull:
            async with stdio_client(params, errlog=devnull) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                await session.call_tool("search", {"query": queries[0]})
                out = []
                for n in range(repeat):
                    started = time.perf_counter()
                    await session.call_tool("search", {"query": queries[n % len(queries)]})
                    out.append((time.perf_counter() - started) * 1000)
                return out

    return anyio.run(run)


def row(name: str, values: list[float]) -> str:
    return f"| {name} | {statistics.median(values):.1f} | {percentile(values, 0.95):.1f} | {len(values)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", default=[], help="A corpus of bench/.corpora (repeatable).")
    parser.add_argument("--min-files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=50, help="Calls per tool.")
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--stdio", action="store_true", help="Also time search over stdio.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary repository.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from codesearch.api import Index
    from codesearch.serve.mcp import CHARS_PER_TOKEN, Tools, Workspace

    work = Path(tempfile.mkdtemp(prefix="codesearch-bench-mcp-"))
    repo = work / "repo"
    try:
        used = build_corpus(repo, args.corpus, args.min_files)
        started = time.perf_counter()
        report = Index(repo).update()
        print(f"corpus: {', '.join(used)}: {report.files} files, {report.chunks_total} chunks "
              f"(indexed in {time.perf_counter() - started:.1f} s, {report.from_cache} vectors "
              f"from the shared cache)\n")
        workspace = Workspace([repo])
        tools = Tools(workspace)
        (root,) = workspace.roots.values()
        root.prepare()
        queries = load_queries(used)

        print("| tool (in-process, warm) | median ms | p95 ms | calls |\n| --- | --- | --- | --- |")
        for name, values in tool_latencies(tools, root, queries, args.repeat).items():
            print(row(name, values))
        if args.stdio:
            print(row("search over stdio (round trip)", stdio_latency(repo, queries, args.repeat)))

        figures = token_figures(tools, queries, CHARS_PER_TOKEN)
        print(f"\n`search` answers at k=10, max_tokens=4000, {figures['queries']} queries "
              f"({CHARS_PER_TOKEN} chars/token):\n")
        print("| | median | p95 | max |\n| --- | --- | --- | --- |")
        print(f"| answer tokens | {figures['answer_median']:.0f} | {figures['answer_p95']:.0f} | "
              f"{figures['answer_max']:.0f} |")
        print(f"| raw snippets of the same 10 hits (whole definitions) | {figures['raw_median']:.0f} | "
              f"{figures['raw_p95']:.0f} | {figures['raw_max']:.0f} |")
        print(f"| the same 10 hits as unbudgeted JSON (`query --json` fields) | {figures['json_median']:.0f} | "
              f"{figures['json_p95']:.0f} | {figures['json_max']:.0f} |")
        print(f"\nper answer: {figures['cut_mean']:.1f} snippets cut, {figures['omitted_mean']:.1f} "
              "hits left out (on average)\n")

        print("| edit to visible | median ms | p95 ms | edits |\n| --- | --- | --- | --- |")
        for name, values in edit_to_visible(tools, root, repo, args.edits).items():
            print(row(name, values))
        workspace.close()
    finally:
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
