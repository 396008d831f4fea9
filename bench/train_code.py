"""Train minilm-code: all-MiniLM-L6-v2's last two layers, further on code search (issue 17).

    python bench/train_code.py                  # corpus, pairs, train: all steps
    python bench/train_code.py --step pairs     # or one step (each reuses what is in --work)

Steps:

1. corpus: the pinned packages of bench/train_static.py's SOURCES (PyPI wheels, npm
   tarballs, Debian packages; 54 packages in 17 languages, none of them a dev-benchmark
   corpus or a repository of the held-out test) into WORK/corpus, as that script fetches them.
2. pairs: every package folder is chunked by codesearch's own chunker with MiniLM's budget.
   A definition whose doc comment opens with a sentence of 5-40 words gives one pair:
   that sentence (the query) and the chunk as `index.build.embedding_text` gives it to the
   model, with the comments taken out for four pairs in five (so the model learns what
   code does, not only to match a comment) and left in for the fifth (as it is indexed).
   At most 500 pairs per package, repeated sentences dropped: WORK/pairs.jsonl.
3. train: the first 500 pairs are held out; the rest, in batches of 32 drawn from one
   package each (the other functions of the same code are the hard negatives), train
   layers 4 and 5 (of 0-5) with a symmetric in-batch contrastive loss (scale 20),
   AdamW 5e-5, 20 warm-up steps then linear decay, one epoch. The model is written to
   --out as a whole sentence-transformers folder (the bundled MiniLM's files, the trained
   weights), which `codesearch index --model FOLDER` takes.
4. eval: the dev benchmark (hybrid and vector only) with that folder as the index model,
   on copies of bench/.corpora in WORK/dev (so the dev indexes stay MiniLM's), and the
   same with MiniLM for comparison (`bench/prepare_corpora.py` first).

Measured here (2 cores): pairs about 1 min (11,049 pairs in 17 languages); training
about 6.3 s a step, 329 steps in 36 min. On the 500 held-out pairs (recall@1 / MRR among
all 500) the model went from 0.608 / 0.685 to 0.678 / 0.753.

Result on the dev benchmark (603 queries, 36 corpora, same ranking; the layers assembled
onto the bundled MiniLM and run as int8 ONNX like the default): vector only NDCG@10 0.677
-> 0.690, but hybrid 0.732 -> 0.728 and R@1 0.598 -> 0.574 (vector weight 0.4: 0.726,
0.6: 0.725). TSX +0.07, C +0.02, C# +0.02; Kotlin -0.05, Swift -0.06, Python -0.02. The
better vectors add less to full-text search than MiniLM's own: nothing ships, MiniLM stays
the default (docs/benchmarks.md). The script is kept to reproduce the measurement, and as
the starting point for training on queries written like people's rather than doc comments.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import re
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

SEED = 7
PER_SOURCE = 500
HELD_OUT = 500
BATCH = 32
TRAINED_LAYERS = ("4", "5")
QUERY_TOKENS = 64
DOC_TOKENS = 256  # what MiniLM reads (its max_seq_length)

# A doc comment's markers, and the tag lines that end its first paragraph.
_MARKERS = re.compile(r"^\s*(/\*\*?|\*/|\*|///?|//!|#+|--+\s*\|?|\"\"\"|'''|@doc\s+\"\"\"|\{-\s*\|?|-\})\s?")
_TAG = re.compile(r"^\s*[@:\\](param|return|returns|throws|raises|type|rtype|see|since|deprecated"
                  r"|example|arg|args|author)\b", re.I)
_NOISE = re.compile(r"licen[cs]e|copyright|SPDX|TODO|FIXME", re.I)


def comment_and_code(text: str, language: str) -> tuple[str, str]:
    """A chunk's comments, and its code without them (blank lines dropped)."""
    from codesearch.source.comments import COMMENT_SYNTAX, split_comments

    if language not in COMMENT_SYNTAX:
        return "", text
    comments, lines = split_comments(text, language)
    return "\n".join(comments), re.sub(r"\n\s*\n+", "\n", "\n".join(lines)).strip("\n")


def first_sentence(comment: str) -> str:
    """The opening sentence of a doc comment, markers and markup out."""
    words: list[str] = []
    for line in comment.split("\n"):
        line = _MARKERS.sub("", line).strip().strip("*").strip()
        if not line or _TAG.match(line) or line.startswith(("```", "#", "<")):
            if words:
                break
            continue
        words.append(line)
        if line.endswith(".") and len(" ".join(words).split()) >= 6:
            break
    text = " ".join(words)
    text = re.sub(r"\{@\w+\s+([^}]*)\}", r"\1", text)
    text = re.sub(r"<[^>]+>", "", re.sub(r"[`\[\]]", "", text))
    return text.split(". ")[0].strip().rstrip(".")


def make_pairs(corpus: Path) -> list[dict[str, str]]:
    from codesearch.embed.registry import resolve_model
    from codesearch.index.build import embedding_text, model_budget
    from codesearch.source.chunk import chunk_file
    from codesearch.source.discover import discover, read_text

    budget = model_budget(resolve_model("minilm"))
    rng = random.Random(SEED)
    out: list[dict[str, str]] = []
    for folder in sorted(p for p in corpus.iterdir() if p.is_dir()):
        pairs = []
        for source in discover(folder):
            if source.language is None:
                continue
            try:
                text, _ = read_text(source)
            except OSError:
                continue
            for c in chunk_file(source.path, text, source.language, budget):
                if c.kind in ("module", "") or not c.symbol:
                    continue
                comment, code = comment_and_code(c.text, c.language)
                query = first_sentence(comment)
                if not 5 <= len(query.split()) <= 40 or _NOISE.search(query):
                    continue
                if len(code.split("\n")) < 2:
                    continue
                body = c.text if rng.random() < 0.2 else code
                pairs.append({"source": folder.name, "language": c.language, "query": query,
                              "doc": embedding_text(c.path, c.symbol, c.context, body)})
        seen: set[str] = set()
        unique = []
        for pair in pairs:
            if pair["query"].lower() not in seen:
                seen.add(pair["query"].lower())
                unique.append(pair)
        rng.shuffle(unique)
        out += unique[:PER_SOURCE]
        print(f"  {folder.name:22s} {len(pairs):6d} pairs, kept {min(len(unique), PER_SOURCE)}",
              flush=True)
    rng.shuffle(out)
    return out


def train(pairs: list[dict[str, str]], out: Path, epochs: float = 1.0, lr: float = 5e-5) -> str:
    import torch
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer

    from codesearch.embed.registry import local_weights, resolve_model

    torch.manual_seed(0)
    random.seed(0)
    path = str(local_weights(resolve_model("minilm"))[0])
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    prefixes = tuple(f"encoder.layer.{n}." for n in TRAINED_LAYERS)
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(prefixes)
    held, rest = pairs[:HELD_OUT], pairs[HELD_OUT:]

    def embed(texts: list[str], length: int) -> torch.Tensor:
        batch = tokenizer(texts, truncation=True, max_length=length, padding=True,
                          return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

    def held_out() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            q = torch.cat([embed([p["query"] for p in held[i:i + 64]], QUERY_TOKENS)
                           for i in range(0, len(held), 64)])
            d = torch.cat([embed([p["doc"] for p in held[i:i + BATCH]], DOC_TOKENS)
                           for i in range(0, len(held), BATCH)])
        model.train()
        scores = q @ d.T
        ranks = (scores > scores.diag().unsqueeze(1)).sum(1) + 1
        return float((ranks == 1).float().mean()), float((1.0 / ranks.float()).mean())

    print("held-out recall@1 / MRR before: {:.3f} / {:.3f}".format(*held_out()), flush=True)
    by_source: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
    for pair in rest:
        by_source[pair["source"]].append(pair)
    batches = []
    for items in by_source.values():
        random.shuffle(items)
        batches += [items[i:i + BATCH] for i in range(0, len(items) - BATCH // 2, BATCH)]
    random.shuffle(batches)
    steps = int(len(batches) * epochs)
    batches = (batches * (int(epochs) + 1))[:steps]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 20) * max(0.0, 1 - s / steps))
    model.train()
    started = time.time()
    for step, batch in enumerate(batches):
        scores = embed([p["query"] for p in batch], QUERY_TOKENS) @ embed(
            [p["doc"] for p in batch], DOC_TOKENS).T * 20
        labels = torch.arange(len(batch))
        loss = (F.cross_entropy(scores, labels) + F.cross_entropy(scores.T, labels)) / 2
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 20 == 0:
            print(f"  step {step}/{steps} loss {loss.item():.3f} ({time.time() - started:.0f} s)",
                  flush=True)
    print("held-out recall@1 / MRR after: {:.3f} / {:.3f}".format(*held_out()), flush=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(path, out)  # tokenizer, pooling and sentence-transformers settings
    model.save_pretrained(str(out))  # config.json and model.safetensors
    return hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()[:16]


def evaluate(model: Path, work: Path) -> None:
    from sweep import table

    from codesearch.core.types import RankingConfig
    from codesearch.eval.benchmark import EvalConfig, corpus_roots, ensure_indexes, run_configs
    from codesearch.eval.evaluate import load_queries
    from codesearch.index.build import IndexOptions

    queries = load_queries(BENCH / "queries")
    dev = work / "dev"
    for name in sorted({q.corpus for q in queries}):
        if not (dev / name).is_dir():
            shutil.copytree(BENCH / ".corpora" / name, dev / name,
                            ignore=shutil.ignore_patterns(".codesearch"))
    configs = [EvalConfig(f"{mode} {label}", mode, RankingConfig())
               for label in ("trained", "minilm") for mode in ("hybrid", "vector")]
    reports = []
    for label, root, index_model in (("trained", dev, str(model.resolve())),
                                     ("minilm", BENCH / ".corpora", None)):
        roots = corpus_roots(queries, root.resolve())
        ensure_indexes(roots, IndexOptions(model=index_model))
        reports += run_configs(queries, roots, [c for c in configs if c.label.endswith(label)])
    print(table(reports, "language"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", choices=("all", "corpus", "pairs", "train", "eval"),
                        default="all")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tokenlearn-work"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/minilm-code"))
    parser.add_argument("--epochs", type=float, default=1.0)
    args = parser.parse_args()
    pairs_file = args.work / "pairs.jsonl"
    if args.step in ("all", "corpus"):
        from train_static import gather_corpus

        gather_corpus(args.work)
    if args.step in ("all", "pairs"):
        pairs = make_pairs(args.work / "corpus")
        pairs_file.write_text("".join(json.dumps(p) + "\n" for p in pairs))
        print(f"{len(pairs)} pairs in {pairs_file}")
    if args.step in ("all", "train"):
        pairs = [json.loads(line) for line in pairs_file.read_text().splitlines()]
        digest = train(pairs, args.out, args.epochs)
        print(f"trained model in {args.out} (weights digest {digest})")
    if args.step in ("all", "eval"):
        evaluate(args.out, args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
