"""Vector storage precision on the development benchmark: float32 vs int8 vs binary.

Quantization is a storage step (the model's float vectors are the same), so
instead of embedding every corpus again this copies each float32 index and
rewrites its vectors table as `codesearch index --precision ...` would: int8
codes with ranges calibrated once on the corpus, or packed sign bits plus the
int8 codes for rescoring. Then it runs the benchmark queries on each copy and
prints index size, Recall@10 and NDCG@10 beside float32.

    python bench/bench_precision.py            # needs embedded bench/.corpora indexes
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from codesearch.embed.quantize import Calibration
from codesearch.eval import benchmark
from codesearch.eval.evaluate import format_comparison, load_queries
from codesearch.index.build import index_profile, storage_columns
from codesearch.store.tables import IndexStore, read_manifest, vector_columns, write_manifest

HERE = Path(__file__).resolve().parent


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def requantize(index_dir: Path, precision: str) -> None:
    manifest = read_manifest(index_dir)
    assert manifest is not None and manifest.precision == "float32"
    store = IndexStore(index_dir)
    columns = vector_columns(store.vectors)
    hashes, vectors = list(columns["content_hash"]), columns["vector"].astype(np.float32)
    store.db.drop_table("vectors")
    manifest.precision = precision
    manifest.calibration = Calibration.from_embeddings(vectors).to_json()
    manifest.fingerprint = index_profile(manifest).fingerprint(manifest.dim, precision)
    store = IndexStore(index_dir, dim=manifest.dim, precision=precision)
    store.add_vectors(hashes, storage_columns(vectors, manifest))
    store.optimize()
    write_manifest(index_dir, manifest)


def main() -> None:
    corpora = HERE / ".corpora"
    queries = load_queries(HERE / "queries")
    reports, sizes = [], {}
    with tempfile.TemporaryDirectory(prefix="codesearch-precision-") as tmp:
        for precision in ("float32", "int8", "binary"):
            root = Path(tmp) / precision
            for corpus in sorted({q.corpus for q in queries}):
                src = corpora / corpus / ".codesearch"
                if not (src / "manifest.json").exists():
                    sys.exit(f"{corpus} is not indexed: run `codesearch eval bench/queries --root bench/.corpora` first")
                dest = root / corpus / ".codesearch"
                shutil.copytree(src, dest, ignore=shutil.ignore_patterns("lock", "*.log", "*.sock"))
                for item in (corpora / corpus).iterdir():  # the sources, for snippets
                    if item.name != ".codesearch":
                        target = root / corpus / item.name
                        (shutil.copytree if item.is_dir() else shutil.copy)(item, target)
                if precision != "float32":
                    requantize(dest, precision)
            roots = benchmark.corpus_roots(queries, root)
            sizes[precision] = sum(dir_size(p / ".codesearch" / "lance" / "vectors.lance") for p in roots.values())
            configs = [benchmark.EvalConfig(f"hybrid {precision}", "hybrid"),
                       benchmark.EvalConfig(f"vector {precision}", "vector")]
            reports.extend(benchmark.run_configs(queries, roots, configs))
    print(format_comparison(reports))
    print(json.dumps({f"vectors_table_bytes_{k}": v for k, v in sizes.items()}))


if __name__ == "__main__":
    main()
