"""Rerank latency on this CPU, and what it means for the real Qwen3-Reranker sizes.

Measures, in one run:
1. the full pipeline (`codesearch.search.rerank.Qwen3Reranker`) on 40 candidates of 150
   tokens each with the tiny random Qwen3 test model: the pipeline's own overhead;
2. achieved float32 FLOP/s of a matmul shaped like one 0.6B MLP projection on a
   reranker batch (8 sequences x ~210 tokens x 1024 -> 3072);
3. one decoder layer at the real 0.6B width (hidden 1024, 16 heads, 8 KV heads,
   MLP 3072) on the same 40 inputs, which includes attention and framework costs;
and prints the estimated latency of Qwen3-Reranker-0.6B/4B/8B for those 40
candidates: 2 x non-embedding parameters x tokens FLOPs over the measured FLOP/s,
and (0.6B) 28 x the measured layer time.

    python bench/bench_rerank.py [--candidates 40] [--doc-tokens 150] [--threads N]

Keep it short on a shared machine: about 15 s of CPU with the defaults. On a busy
machine `--threads 1` is faster than two threads (OpenMP oversubscription).
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# name: (total params, non-embedding params, layers, hidden) from the model configs
# (vocab 151,669; the 0.6B ties its embeddings to the LM head).
SIZES = {
    "qwen3-reranker-0.6b": (0.596e9, 0.44e9, 28, 1024),
    "qwen3-reranker-4b": (4.02e9, 3.63e9, 36, 2560),
    "qwen3-reranker-8b": (7.57e9, 6.95e9, 36, 4096),
}

QUERY = "retry an HTTP request with exponential backoff"


def candidate_texts(tokenizer: object, count: int, doc_tokens: int) -> list[str]:
    """Real code (stdlib function sources) cut to `doc_tokens` tokens each."""
    import json
    import logging
    import os.path
    import shutil
    import textwrap

    sources: list[str] = []
    for module in (shutil, json, textwrap, logging, os.path, inspect):
        for _, func in inspect.getmembers(module, inspect.isfunction):
            try:
                sources.append(inspect.getsource(func))
            except (OSError, TypeError):
                continue
    docs: list[str] = []
    for source in sources:
        ids = tokenizer(source, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        if len(ids) >= doc_tokens:
            docs.append(tokenizer.decode(ids[:doc_tokens]))  # type: ignore[attr-defined]
        if len(docs) == count:
            break
    if len(docs) < count:
        raise SystemExit(f"only {len(docs)} stdlib functions of {doc_tokens}+ tokens found")
    return docs


def timed(fn: object, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - start)
    return out


def matmul_flops(rows: int, repeats: int = 5) -> float:
    import torch

    a = torch.randn(rows, 1024)
    b = torch.randn(1024, 3072)
    torch.mm(a, b)  # warm-up: thread pool and caches
    best = min(timed(lambda: torch.mm(a, b), repeats))
    return 2.0 * rows * 1024 * 3072 / best


def layer_seconds(rows: list[list[int]], batch_size: int) -> float:
    """One real-width 0.6B decoder layer over the same batches (random weights)."""
    import torch
    from transformers import Qwen3Config
    from transformers.models.qwen3.modeling_qwen3 import Qwen3Model

    config = Qwen3Config(
        vocab_size=1024,
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=1,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=4096,
    )
    model = Qwen3Model(config).eval()
    ordered = sorted(rows, key=len, reverse=True)

    def run() -> None:
        with torch.inference_mode():
            for start in range(0, len(ordered), batch_size):
                batch = ordered[start : start + batch_size]
                width = max(len(r) for r in batch)
                ids = torch.zeros((len(batch), width), dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for i, row in enumerate(batch):
                    ids[i, width - len(row) :] = torch.tensor(row) % 1024
                    mask[i, width - len(row) :] = 1
                model(input_ids=ids, attention_mask=mask, use_cache=False)

    with torch.inference_mode():
        model(input_ids=torch.zeros((1, 8), dtype=torch.long))
    return min(timed(run, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--doc-tokens", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from codesearch.search.rerank import Qwen3Reranker, load_reranker
    from tests.tiny_reranker import build_tiny_reranker

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = build_tiny_reranker(Path(tmp) / "tiny")
        reranker = load_reranker(str(folder), batch_size=args.batch_size)
        load_s = time.perf_counter() - start
        assert isinstance(reranker, Qwen3Reranker)
        docs = candidate_texts(reranker.tokenizer, args.candidates, args.doc_tokens)
        rows = reranker.encode(QUERY, docs)
        reranker.score(QUERY, docs[:2])  # warm-up
        tiny = timed(lambda: reranker.score(QUERY, docs), args.repeats)

    tokens = sum(len(r) for r in rows)
    per_seq = tokens / len(rows)
    print(f"torch threads: {torch.get_num_threads()}; batch size {args.batch_size}")
    print(
        f"input: {len(rows)} candidates x {args.doc_tokens} document tokens "
        f"= {per_seq:.0f} tokens per input with template, {tokens} tokens in all"
    )
    print(f"tiny model build + load: {load_s:.2f} s")
    print(
        f"tiny Qwen3 reranker (hidden 32, 2 layers), {len(rows)} candidates: "
        f"median {statistics.median(tiny) * 1000:.1f} ms, best {min(tiny) * 1000:.1f} ms "
        f"(pipeline overhead: tokenize, pad, batch, score)"
    )

    rows_per_batch = int(args.batch_size * per_seq)
    flops = matmul_flops(rows_per_batch)
    print(
        f"matmul [{rows_per_batch} x 1024] @ [1024 x 3072] float32: "
        f"{flops / 1e9:.1f} GFLOP/s achieved"
    )
    # One batch is enough to time a layer; every batch has the same shape here.
    sample = rows[: args.batch_size]
    layer = layer_seconds(sample, args.batch_size) * len(rows) / len(sample)
    print(
        f"one 0.6B-width decoder layer: {layer:.2f} s for the {len(rows)} inputs "
        f"(timed on {len(sample)}, scaled)"
    )

    print(f"\nestimated latency to rerank {len(rows)} candidates ({tokens} tokens) on this CPU:")
    for name, (total, body, layers, _hidden) in SIZES.items():
        compute = 2.0 * body * tokens / flops
        brief = 2.0 * total * tokens / flops
        line = (
            f"  {name:<22} {compute:7.1f} s  (2 x {body / 1e9:.2f}e9 non-embedding params x "
            f"tokens; {brief:.1f} s counting all {total / 1e9:.2f}e9 params)"
        )
        if name.endswith("0.6b"):
            line += f"; from the layer probe: {layers * layer:.1f} s"
        print(line)
        weights_gb = total * 4 / 1e9
        print(f"  {'':<22} float32 weights {weights_gb:.1f} GB, bf16 {weights_gb / 2:.1f} GB")


if __name__ == "__main__":
    main()
