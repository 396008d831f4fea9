"""Embedding throughput: sentence-transformers on torch vs ONNX Runtime fp32 / int8.

    python bench/bench_embed.py --limit 1000 --threads 1 2
    python bench/bench_embed.py --limit 500 --ndcg      # + NDCG@10 of each backend

With --ndcg, each backend also re-indexes the development benchmark (bench/queries over
bench/.corpora, `python bench/prepare_corpora.py` first) from scratch in a temporary copy,
through `codesearch eval --backend ...`, and reports its hybrid NDCG@10 and index time.

Corpus: real function sources (an `ast` walk over the installed site-packages, so the
benchmark does not depend on the chunker), shuffled with a fixed seed. Every backend
embeds the same texts in the same process, one after another, so the ratio to torch is
measured side by side. The machine may be shared: the load average is printed with
every row.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codesearch.embed.onnx import DEFAULT_QUANT_TYPE, OnnxEmbedder  # noqa: E402
from codesearch.embed.registry import ModelProfile, get_profile  # noqa: E402

PACKAGES = ("rich", "click", "pygments", "typer", "pathspec", "pyarrow", "numpy", "transformers")


def site_packages() -> Path:
    return Path(np.__file__).resolve().parents[1]


def collect_functions(limit: int, seed: int = 0) -> list[str]:
    """Function and method sources of 3-200 lines from a few installed packages."""
    found: list[str] = []
    for package in PACKAGES:
        for path in sorted((site_packages() / package).rglob("*.py")):
            try:
                source = path.read_text(encoding="utf-8")
                tree = ast.parse(source)
            except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    segment = ast.get_source_segment(source, node)
                    if segment and 3 <= lines <= 200:
                        found.append(segment)
        if len(found) >= limit * 4:
            break
    random.Random(seed).shuffle(found)
    return found[:limit]


@dataclass
class Row:
    backend: str
    threads: int
    chunks_per_s: float  # best round, wall clock
    tokens_per_s: float
    chunks_per_cpu_s: float  # best round, process CPU time: robust when the machine is shared
    load: float
    vectors: np.ndarray


def set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def time_it(
    embed: Callable[[Sequence[str]], np.ndarray], texts: list[str]
) -> tuple[float, float, np.ndarray]:
    """Wall and process-CPU seconds of one call over all texts."""
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = embed(texts)
    return time.perf_counter() - wall, time.process_time() - cpu, vectors


def torch_embedder(profile: ModelProfile) -> Callable[[Sequence[str]], np.ndarray]:
    from codesearch.embed.local import SentenceTransformerEmbedder

    # batch 16: best for torch on this machine (docs/how-it-works.md); encode() length-sorts the whole list.
    return SentenceTransformerEmbedder(profile, batch_size=16).embed_documents


def neighbours(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :k]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b, strict=True)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1500, help="number of functions")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=8, help="ONNX batch size")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch baseline")
    parser.add_argument("--quant-types", nargs="+", default=["qint8-split", "qint8"])
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; best is kept")
    parser.add_argument("--ndcg", action="store_true",
                        help="also measure each backend's NDCG@10 on the development benchmark")
    args = parser.parse_args(argv)

    profile = get_profile("minilm")
    texts = collect_functions(args.limit)
    probe = OnnxEmbedder(profile, cache_dir=args.cache_dir, threads=1)
    tokens = sum(min(probe.count_tokens(t), profile.max_tokens_cpu) for t in texts)
    print(
        f"{len(texts)} functions, {tokens} tokens (mean {tokens / len(texts):.0f}, "
        f"truncated at {profile.max_tokens_cpu}); cpus={os.cpu_count()}",
        flush=True,
    )

    backends: list[tuple[str, Callable[[int], Callable[[Sequence[str]], np.ndarray]]]] = []
    if not args.no_torch:
        torch_embed = torch_embedder(profile)

        def make_torch(threads: int) -> Callable[[Sequence[str]], np.ndarray]:
            return torch_embed  # torch's thread count is process-wide: set before each run

        backends.append(("torch", make_torch))

    def make_onnx(quantized: bool, quant_type: str = "qint8") -> Callable:
        def make(threads: int) -> Callable[[Sequence[str]], np.ndarray]:
            return OnnxEmbedder(
                profile,
                quantized=quantized,
                quant_type=quant_type,
                cache_dir=args.cache_dir,
                threads=threads,
                batch_size=args.batch_size,
            ).embed_documents

        return make

    backends.append(("onnx-fp32", make_onnx(False)))
    for quant_type in args.quant_types:
        backends.append((f"onnx-int8-{quant_type}", make_onnx(True, quant_type)))

    rows: list[Row] = []
    for threads in args.threads:
        embedders = [(name, make(threads)) for name, make in backends]
        for _, embed in embedders:
            embed(texts[:8])  # warm-up: first-call allocations are not throughput
        best: dict[str, tuple[float, float, float, np.ndarray]] = {}
        # Rounds interleave the backends so a burst of load from other users hits all alike.
        for _ in range(args.rounds):
            for name, embed in embedders:
                if name == "torch":
                    set_torch_threads(threads)
                wall, cpu, vectors = time_it(embed, texts)
                old = best.get(name)
                best[name] = (
                    min(wall, old[0]) if old else wall,
                    min(cpu, old[1]) if old else cpu,
                    os.getloadavg()[0],
                    vectors,
                )
                print(
                    f"  {name:18s} threads={threads} {len(texts) / wall:6.1f} chunks/s "
                    f"{len(texts) / cpu:6.1f} chunks/cpu-s  load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
        for name, (wall, cpu, load, vectors) in best.items():
            rows.append(
                Row(
                    name, threads, len(texts) / wall, tokens / wall, len(texts) / cpu, load, vectors
                )
            )

    report(rows)
    if args.ndcg:
        quality = [("torch", "torch")] if not args.no_torch else []
        quality += [("onnx-fp32", "onnx"), (f"onnx-int8-{DEFAULT_QUANT_TYPE}", "onnx-int8")]
        report_quality([(name, *dev_benchmark_ndcg(backend)) for name, backend in quality])
    return 0


BENCH = Path(__file__).resolve().parent


def dev_benchmark_ndcg(backend: str) -> tuple[float, float, float]:
    """(hybrid NDCG@10, text-only NDCG@10, index seconds) with a fresh index per corpus."""
    corpora = BENCH / ".corpora"
    if not corpora.is_dir():
        raise SystemExit("no bench/.corpora: run `python bench/prepare_corpora.py` first")
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        copy = Path(tmp) / "corpora"
        shutil.copytree(corpora, copy, ignore=shutil.ignore_patterns(".codesearch"))
        env = {**os.environ, "CODESEARCH_EMBED_CACHE": "0"}  # every vector really embedded
        done = subprocess.run(
            [sys.executable, "-m", "codesearch", "eval", str(BENCH / "queries"), "--root",
             str(copy), "--backend", backend, "--mode", "hybrid", "--mode", "text", "--json"],
            capture_output=True, text=True, env=env, check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"codesearch eval --backend {backend} failed: {done.stderr.strip()[-500:]}")
    reports = {r["label"]: r for r in json.loads(done.stdout)["reports"]}
    hybrid, text = reports["hybrid + ranking signals"], reports["text + ranking signals"]
    ndcg = hybrid["overall"]["ndcg@10"], text["overall"]["ndcg@10"]
    print(f"  {backend:10s} hybrid NDCG@10 {ndcg[0]:.4f}  index {hybrid['index_seconds']:.0f} s",
          flush=True)
    return ndcg[0], ndcg[1], float(hybrid["index_seconds"])


def report_quality(rows: list[tuple[str, float, float, float]]) -> None:
    base = next((ndcg for name, ndcg, _, _ in rows if name == "onnx-fp32"), None)
    print("\n| backend | hybrid NDCG@10 | vs fp32 | text-only NDCG@10 | dev-benchmark index time |")
    print("|---|---|---|---|---|")
    for name, ndcg, text, seconds in rows:
        delta = f"{(ndcg / base - 1) * 100:+.1f}%" if base else "-"
        print(f"| {name} | {ndcg:.4f} | {delta} | {text:.4f} | {seconds:.0f} s |")


def report(rows: list[Row]) -> None:
    reference = {r.threads: r for r in rows if r.backend == "torch"}
    floats = {r.threads: r for r in rows if r.backend == "onnx-fp32"}
    print()
    header = (
        f"| {'backend':18s} | thr | chunks/s | tokens/s | vs torch | chunks/cpu-s | cpu vs torch "
        "| cos mean | cos min | top-10 | load1 |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for row in rows:
        base = reference.get(row.threads)
        ratio = f"{row.chunks_per_s / base.chunks_per_s:7.2f}x" if base else "      - "
        cpu_ratio = (
            f"{row.chunks_per_cpu_s / base.chunks_per_cpu_s:11.2f}x" if base else f"{'-':>12s}"
        )
        float_row = floats.get(row.threads)
        if float_row is not None and row is not float_row:
            cos = (row.vectors * float_row.vectors).sum(axis=1)
            top = overlap(neighbours(row.vectors), neighbours(float_row.vectors))
            quality = f" {cos.mean():8.4f} | {cos.min():7.4f} | {top:6.3f}"
        else:
            quality = f" {'-':>8s} | {'-':>7s} | {'-':>6s}"
        print(
            f"| {row.backend:18s} | {row.threads:3d} | {row.chunks_per_s:8.1f} | "
            f"{row.tokens_per_s:8.0f} | {ratio} | {row.chunks_per_cpu_s:12.1f} | {cpu_ratio} |"
            f"{quality} | {row.load:5.2f} |"
        )
    print("\nchunks/s: best wall-clock round; chunks/cpu-s: best round in process CPU time")
    print("(comparable across backends when other users load the machine).")
    print("cosine and top-10 neighbour overlap are against ONNX fp32 at the same thread count;")
    print("ONNX fp32 against torch:", end=" ")
    for threads, base in reference.items():
        if threads in floats:
            cos = (floats[threads].vectors * base.vectors).sum(axis=1)
            print(f"threads={threads} cos min {cos.min():.6f}", end="  ")
    print()


if __name__ == "__main__":
    raise SystemExit(main())
