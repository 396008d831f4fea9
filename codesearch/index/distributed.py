"""The indexing pipeline on a Ray cluster: `codesearch index --engine ray`.

The same steps as the local engine, with Ray doing the heavy ones: the files to chunk
become a Ray dataset chunked by parallel tasks, and embedding runs as `map_batches`
over an actor class, so each actor loads its model once (on a GPU with
`num_gpus_per_worker`). Rows are written by this process alone, one committer, through
the same code as a local build, so both engines produce the same rows. Ray is an
optional extra: `pip install "codesearch-local[scale]"`.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesearch.core.errors import CodesearchError
from codesearch.embed.registry import ModelProfile
from codesearch.index.rows import FILES_PER_TASK, BudgetSpec, ChunkedBatch, ChunkJob, chunk_batch

# Texts per embed call: each call runs one dataset through a fresh actor pool, so calls
# are made large; the progress bar moves once per call.
EMBED_CALL_TEXTS = 4096


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # an existing cluster ("auto", "ray://host:10001"); None: start one here
    workers: int = 2  # embedding actors (and the local cluster's CPUs)
    # Texts per actor batch: 64, the local engine's embed batch, gives vectors identical to
    # it (int8 runtimes quantize activations per batch, so other groupings differ slightly).
    batch_size: int = 64
    num_gpus_per_worker: float = 0.0


def start_ray(options: RayOptions) -> Any:
    """Import Ray and join (or start) a cluster; a missing extra is one clear error."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise CodesearchError(
            "the ray engine needs Ray: pip install \"codesearch-local[scale]\"") from None
    # Ray forks its workers after LanceDB is loaded; LanceDB warns, but the workers never
    # touch its runtime (rows are written by this process only).
    warnings.filterwarnings("ignore", message="lancedb fork support")
    if not ray.is_initialized():
        if options.address:
            ray.init(address=options.address, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(num_cpus=max(2, options.workers), include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR")
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # batches come back in job order
    context.enable_progress_bars = False  # ours is on stderr already
    return ray


class RayRowPool:
    """`RowPool`'s interface over Ray tasks: the files become a dataset, chunked in parallel."""

    def __init__(self, jobs: Sequence[ChunkJob], spec: BudgetSpec, options: RayOptions):
        self.jobs = list(jobs)
        self.spec = spec
        self.options = options

    def start(self) -> RayRowPool:
        return self

    def extend(self, jobs: Sequence[ChunkJob]) -> None:
        """More jobs (RowPool.extend): the dataset is made of all of them when results run."""
        self.jobs.extend(jobs)

    def results(self) -> Iterator[ChunkedBatch]:
        if not self.jobs:
            return
        ray = start_ray(self.options)
        parts = [self.jobs[i : i + FILES_PER_TASK] for i in range(0, len(self.jobs), FILES_PER_TASK)]
        items = [{"part": pickle.dumps(part)} for part in parts]
        spec = self.spec

        def chunk(batch: dict[str, Any]) -> dict[str, Any]:
            done = [pickle.dumps(chunk_batch(pickle.loads(blob), spec)) for blob in batch["part"]]
            return {"batch": np.array(done, dtype=object)}

        dataset = ray.data.from_items(items).map_batches(chunk, batch_size=1, batch_format="numpy")
        for row in dataset.iter_rows():
            yield pickle.loads(row["batch"])

    def close(self) -> None:
        pass


class _EmbedActor:
    """One model per actor, loaded once; each row it gets is one batch of texts."""

    def __init__(self, profile: ModelProfile, dim: int, backend: str, workers: int):
        import os

        from codesearch.embed.local import load_embedder

        # The node's cores shared by the actors on it: oversubscribed threads run slower.
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
        self.embedder = load_embedder(profile, dim, backend=backend, threads=threads)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = []
        for blob in batch["texts"]:
            vectors = self.embedder.embed_documents(pickle.loads(blob))
            out.append(pickle.dumps(np.asarray(vectors, dtype=np.float32)))
        return {"vectors": np.array(out, dtype=object)}


class RayEmbedder:
    """The `Embedder` protocol with documents embedded by a pool of Ray actors."""

    def __init__(self, profile: ModelProfile, dim: int, backend: str, options: RayOptions,
                 precision: str = "float32"):
        self.profile, self.dim, self.precision = profile, dim, precision
        self.backend = backend
        self.options = options
        self._local: Any = None

    @property
    def fingerprint(self) -> str:
        return self.profile.fingerprint(self.dim, self.precision)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ray = start_ray(self.options)
        # One row per batch of texts, exactly the local engine's batches: int8 runtimes
        # quantize activations per batch, so the same grouping gives the same vectors.
        size = self.options.batch_size
        rows = [{"texts": pickle.dumps(list(texts[i : i + size]))} for i in range(0, len(texts), size)]
        dataset = ray.data.from_items(rows).map_batches(
            _EmbedActor,
            fn_constructor_kwargs={"profile": self.profile, "dim": self.dim, "backend": self.backend,
                                   "workers": self.options.workers},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=self.options.workers),
            num_gpus=self.options.num_gpus_per_worker or None,
            batch_format="numpy",
        )
        parts = [pickle.loads(row["vectors"]) for row in dataset.iter_rows()]
        return np.concatenate(parts).astype(np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        # Queries are few and need no cluster: embed them here.
        if self._local is None:
            from codesearch.embed.local import load_embedder

            self._local = load_embedder(self.profile, self.dim, backend=self.backend)
        return self._local.embed_queries(texts)


class RayEngine:
    """`build_index`'s engine: chunking as Ray tasks, embedding on Ray actors."""

    embed_batch = EMBED_CALL_TEXTS

    def __init__(self, options: RayOptions | None = None):
        self.options = options or RayOptions()

    def row_pool(self, jobs: list[ChunkJob], spec: BudgetSpec) -> RayRowPool:
        return RayRowPool(jobs, spec, self.options)

    def embedder(self, profile: ModelProfile, dim: int, backend: str, precision: str) -> RayEmbedder:
        return RayEmbedder(profile, dim, backend, self.options, precision)
