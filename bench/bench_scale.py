"""Scale figures for stores of many repositories (docs/scale.md).

    python bench/bench_scale.py --sizes 100000 300000 --index IVF_PQ IVF_HNSW_SQ
    python bench/bench_scale.py --sizes 1000000 --index IVF_PQ
    python bench/bench_scale.py --s3             # local disk vs a local S3 server (moto)

Vectors are real chunk embeddings (every vectors table under bench/.corpora, the
bundled MiniLM) replicated with small noise up to each size, as the issue allows. For
each size it prints: exact numpy scoring latency (what a small store does), ANN index
build time, ANN recall@10 against exact search and query latency (p50/p95), and the
peak RSS of this process; `--sizes` below 200k show where exact scoring stops being
faster. Bytes on disk per chunk for float32/int8/binary come from real tables.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
QUERIES = 100
K = 10


def real_vectors() -> np.ndarray:
    import lancedb

    out = []
    for lance in sorted(BENCH.glob(".corpora/*/.codesearch/lance")):
        db = lancedb.connect(str(lance))
        if "vectors" in db.table_names():
            table = db.open_table("vectors")
            if "vector" in table.schema.names:
                column = table.to_arrow()["vector"].combine_chunks()
                out.append(column.flatten().to_numpy().reshape(len(column), -1))
    if not out:
        sys.exit("error: no float32 vectors under bench/.corpora: run `codesearch eval bench/queries "
                 "--root bench/.corpora` first")
    return np.concatenate(out).astype(np.float32)


def replicate(base: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base), size)
    data = base[picks] + rng.normal(0, 0.03, (size, base.shape[1])).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return data


def exact_topk(data: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    found, times = [], []
    for q in queries:
        t = time.perf_counter()
        scores = data @ q
        top = np.argpartition(-scores, K)[:K]
        found.append(top[np.argsort(-scores[top])])
        times.append((time.perf_counter() - t) * 1000)
    return np.array(found), times


def lance_table(folder: Path, data: np.ndarray, uri: str | None = None, options: dict | None = None):
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(uri or str(folder), storage_options=options)
    ids = pa.array([f"{i:08x}" for i in range(len(data))])
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(data.reshape(-1)), data.shape[1])
    table = db.create_table("vectors", data=pa.table({"content_hash": ids, "vector": vectors}))
    return table


def ann_run(table, queries: np.ndarray, truth: np.ndarray, nprobes: int, refine: int) -> tuple[float, list[float]]:
    recalls, times = [], []
    for q, want in zip(queries, truth, strict=True):
        t = time.perf_counter()
        got = (table.search(q).distance_type("dot").nprobes(nprobes).refine_factor(refine)
               .limit(K).select(["content_hash", "_distance"]).to_arrow()["content_hash"].to_pylist())
        times.append((time.perf_counter() - t) * 1000)
        recalls.append(len({int(h, 16) for h in got} & set(want.tolist())) / K)
    return float(np.mean(recalls)), times


def build(table, kind: str, rows: int, dim: int) -> float:
    from lancedb.index import IvfHnswSq, IvfPq

    t = time.perf_counter()
    if kind == "IVF_PQ":
        config = IvfPq(distance_type="dot", num_partitions=max(16, int(rows ** 0.5)),
                       num_sub_vectors=dim // 8)
    else:
        config = IvfHnswSq(distance_type="dot", num_partitions=max(1, rows // 100_000))
    table.create_index("vector", config=config)
    return time.perf_counter() - t


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bytes_per_chunk(base: np.ndarray, folder: Path) -> None:
    """On-disk bytes per chunk of the vectors table in each precision, 100k real rows."""
    import lancedb
    import pyarrow as pa

    from codesearch.embed.quantize import Calibration, pack_binary, quantize_int8

    data = replicate(base, 100_000, seed=3)
    cal = Calibration.from_embeddings(data)
    ids = pa.array([f"{i:032x}" for i in range(len(data))])
    codes = quantize_int8(data, cal)
    columns = {
        "float32": {"vector": pa.FixedSizeListArray.from_arrays(pa.array(data.reshape(-1)), data.shape[1])},
        "int8": {"codes": pa.FixedSizeListArray.from_arrays(pa.array(codes.reshape(-1)), data.shape[1])},
    }
    bits = pack_binary(data)
    columns["binary"] = {**columns["int8"],
                         "bits": pa.FixedSizeListArray.from_arrays(pa.array(bits.reshape(-1)), bits.shape[1])}
    print("\nbytes on disk per chunk (vectors table, 100k rows, 384 dims):")
    for precision, cols in columns.items():
        path = folder / f"size-{precision}"
        lancedb.connect(str(path)).create_table("v", data=pa.table({"content_hash": ids, **cols}))
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        print(f"  {precision:<8} {size / len(data):8.0f} B")


def s3_latency(base: np.ndarray, folder: Path) -> None:
    """Exact-scoring queries read from local disk vs from a local S3 server."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region": "us-east-1",
               "endpoint": f"http://{host}:{port}", "allow_http": "true"}
    boto3.client("s3", endpoint_url=options["endpoint"], aws_access_key_id="bench",
                 aws_secret_access_key="bench", region_name="us-east-1").create_bucket(Bucket="bench")
    data = replicate(base, 50_000, seed=4)
    print("\nopen + read 50k vectors + one query (exact), 5 runs:")
    for label, uri, opts in (("local disk", str(folder / "local"), None),
                             ("S3 (moto, 127.0.0.1)", "s3://bench/store", options)):
        lance_table(folder, data, uri, opts)
        times = []
        for _ in range(5):
            import lancedb

            t = time.perf_counter()
            table = lancedb.connect(uri, storage_options=opts).open_table("vectors")
            column = table.to_arrow()["vector"].combine_chunks()
            matrix = column.flatten().to_numpy().reshape(len(column), -1)
            _ = np.argsort(-(matrix @ data[0]))[:K]
            times.append((time.perf_counter() - t) * 1000)
        print(f"  {label:<22} median {statistics.median(times):7.1f} ms")
    server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--index", nargs="+", default=["IVF_PQ", "IVF_HNSW_SQ"])
    parser.add_argument("--nprobes", type=int, default=20)
    parser.add_argument("--refine", type=int, default=10)
    parser.add_argument("--s3", action="store_true", help="also compare local disk with a local S3 server")
    parser.add_argument("--sizes-on-disk", action="store_true", help="also bytes per chunk per precision")
    args = parser.parse_args()
    base = real_vectors()
    print(f"{len(base)} real vectors of {base.shape[1]} dims, replicated with noise")
    rng = np.random.default_rng(1)
    queries = base[rng.integers(0, len(base), QUERIES)] + rng.normal(0, 0.05, (QUERIES, base.shape[1]))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = Path(tmp)
        print(f"\n{'vectors':>9} {'exact p50':>10} {'index':<12} {'build s':>8} {'recall@10':>9} "
              f"{'ANN p50':>8} {'ANN p95':>8} {'peak RSS':>9}")
        for size in args.sizes:
            data = replicate(base, size)
            truth, exact_ms = exact_topk(data, queries)
            for kind in args.index:
                table = lance_table(folder / f"{size}-{kind}", data)
                seconds = build(table, kind, size, data.shape[1])
                recall, ann_ms = ann_run(table, queries, truth, args.nprobes, args.refine)
                print(f"{size:>9} {statistics.median(exact_ms):>8.1f}ms {kind:<12} {seconds:>8.1f} "
                      f"{recall:>9.3f} {statistics.median(ann_ms):>6.1f}ms {pct(ann_ms, 0.95):>6.1f}ms "
                      f"{rss_mb():>7.0f}MB", flush=True)
            del data
        if args.sizes_on_disk:
            bytes_per_chunk(base, folder)
        if args.s3:
            s3_latency(base, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
