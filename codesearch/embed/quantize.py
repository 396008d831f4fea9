"""Quantized vector storage: calibrated int8 and packed binary, as pure numpy functions.

int8 follows sentence-transformers' scheme (per-dimension [min, max] split into
256 buckets) with one difference that matters for an index: the ranges are
computed ONCE from a sample of document embeddings (`Calibration`), stored in the
index manifest, and reused for every later batch and for queries. Quantizing each
batch with its own ranges (what `encode(precision="int8")` does) makes codes of
different batches incomparable. Values outside the calibrated range are clipped.

binary keeps one sign bit per dimension (`np.packbits(x > 0)`); search is Hamming
distance over the packed bytes, then the top candidates are rescored with the
float query against a higher-precision copy (int8 codes or float vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LEVELS = 255  # int8 codes -128..127 are 256 buckets: 255 steps between min and max

# Bits set in each byte value, for numpy versions without np.bitwise_count.
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True)
class Calibration:
    """Per-dimension value ranges for int8 codes; JSON-serialisable for the manifest."""

    mins: np.ndarray  # float32 (dim,)
    maxs: np.ndarray  # float32 (dim,)
    count: int = 0  # rows the ranges were computed from

    @property
    def dim(self) -> int:
        return int(self.mins.shape[0])

    @property
    def steps(self) -> np.ndarray:
        # A constant dimension still needs a non-zero step to divide by.
        return np.maximum((self.maxs - self.mins) / LEVELS, 1e-12).astype(np.float32)

    @classmethod
    def from_embeddings(
        cls, embeddings: np.ndarray, sample: int = 10_000, seed: int = 0
    ) -> Calibration:
        """Ranges from (a deterministic sample of) document embeddings."""
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError("calibration needs a non-empty (n, dim) matrix of embeddings")
        if x.shape[0] > sample:
            rows = np.random.default_rng(seed).choice(x.shape[0], size=sample, replace=False)
            x = x[np.sort(rows)]
        return cls(
            mins=x.min(axis=0).astype(np.float32),
            maxs=x.max(axis=0).astype(np.float32),
            count=int(x.shape[0]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": "int8-minmax-v1",
            "count": self.count,
            "mins": [float(v) for v in self.mins],
            "maxs": [float(v) for v in self.maxs],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        if data.get("scheme") != "int8-minmax-v1":
            raise ValueError(f"unknown calibration scheme {data.get('scheme')!r}")
        mins = np.asarray(data["mins"], dtype=np.float32)
        maxs = np.asarray(data["maxs"], dtype=np.float32)
        if mins.shape != maxs.shape or mins.ndim != 1:
            raise ValueError("calibration mins and maxs must be equal-length lists")
        return cls(mins=mins, maxs=maxs, count=int(data.get("count", 0)))


def _check_dim(x: np.ndarray, cal: Calibration) -> None:
    if x.shape[-1] != cal.dim:
        raise ValueError(f"vectors have {x.shape[-1]} dimensions, calibration has {cal.dim}")


def quantize_int8(x: np.ndarray, cal: Calibration) -> np.ndarray:
    """int8 codes (same shape as `x`) with the calibrated ranges; out-of-range values clip."""
    v = np.asarray(x, dtype=np.float32)
    _check_dim(v, cal)
    codes = np.rint((v - cal.mins) / cal.steps) - 128.0
    return np.clip(codes, -128, 127).astype(np.int8)


def dequantize_int8(q: np.ndarray, cal: Calibration) -> np.ndarray:
    """float32 approximation of the vectors behind int8 codes."""
    codes = np.asarray(q)
    _check_dim(codes, cal)
    return ((codes.astype(np.float32) + 128.0) * cal.steps + cal.mins).astype(np.float32)


def int8_scores(query_vec: np.ndarray, doc_codes: np.ndarray, cal: Calibration) -> np.ndarray:
    """Dot products of float queries with int8-coded documents, without materialising them.

    q · (s ⊙ (c + 128) + m) = (q ⊙ s) · (c + 128) + q · m. Returns (n_docs,) for one
    query, (n_queries, n_docs) for several.
    """
    q = np.asarray(query_vec, dtype=np.float32)
    _check_dim(q, cal)
    shifted = doc_codes.astype(np.float32) + 128.0
    offset = q @ cal.mins
    scores = (q * cal.steps) @ shifted.T + (offset[:, None] if q.ndim == 2 else offset)
    return np.asarray(scores, dtype=np.float32)


def pack_binary(x: np.ndarray) -> np.ndarray:
    """Sign bits packed 8 per byte: uint8 (n, ceil(dim / 8))."""
    v = np.asarray(x)
    return np.packbits(v > 0, axis=-1)


def hamming_distances(query_bits: np.ndarray, doc_bits: np.ndarray) -> np.ndarray:
    """Hamming distance of each packed query to each packed document: (n,) or (m, n)."""
    q = np.asarray(query_bits, dtype=np.uint8)
    d = np.asarray(doc_bits, dtype=np.uint8)
    if q.shape[-1] != d.shape[-1]:
        raise ValueError(f"packed widths differ: query {q.shape[-1]} bytes, docs {d.shape[-1]}")
    xor = np.bitwise_xor(q[..., None, :], d) if q.ndim == 2 else np.bitwise_xor(q, d)
    # np.bitwise_count exists from numpy 2.0; the lookup table covers 1.26.
    counts = np.bitwise_count(xor) if hasattr(np, "bitwise_count") else _POPCOUNT[xor]
    return counts.sum(axis=-1, dtype=np.int32)


def _topk_ascending(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest values along the last axis, ascending, ties by index."""
    k = min(k, values.shape[-1])
    if k <= 0:
        return np.zeros((*values.shape[:-1], 0), dtype=np.int64)
    # A stable sort, not argpartition: ties at the k-th value must go to the lowest
    # indices, so the same query picks the same pool every time.
    return np.argsort(values, axis=-1, kind="stable")[..., :k]


def hamming_topk(
    query_bits: np.ndarray, doc_bits: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances) of the k nearest packed documents, nearest first."""
    distances = hamming_distances(query_bits, doc_bits)
    idx = _topk_ascending(distances, k)
    return idx, np.take_along_axis(distances, idx, axis=-1)


def float_topk(
    query_vec: np.ndarray, doc_vecs: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores) of the k highest dot products, best first (exact search)."""
    scores = np.asarray(query_vec, dtype=np.float32) @ np.asarray(doc_vecs, dtype=np.float32).T
    idx = _topk_ascending(-scores, k)
    return idx, np.take_along_axis(scores, idx, axis=-1)


def int8_topk(
    query_vec: np.ndarray, doc_codes: np.ndarray, cal: Calibration, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores) of the k best int8-coded documents for a float query."""
    scores = int8_scores(query_vec, doc_codes, cal)
    idx = _topk_ascending(-scores, k)
    return idx, np.take_along_axis(scores, idx, axis=-1)


def binary_search(
    query_vec: np.ndarray,
    doc_bits: np.ndarray,
    k: int,
    *,
    candidates: int | None = None,
    doc_vecs: np.ndarray | None = None,
    doc_codes: np.ndarray | None = None,
    cal: Calibration | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Hamming top `candidates` (default 10·k), rescored with the float query.

    Rescoring uses `doc_vecs` (float rows, aligned with `doc_bits`) if given,
    else `doc_codes` + `cal` (int8). Without either, the ranking is by Hamming
    distance and the scores are 1 - 2·hamming/bits (an estimate of cosine).
    `query_vec` is one float vector (dim,). Returns (indices, scores), best first.
    """
    q = np.asarray(query_vec, dtype=np.float32)
    if q.ndim != 1:
        raise ValueError("binary_search takes one query vector")
    pool = candidates if candidates is not None else max(10 * k, 100)
    cand, dist = hamming_topk(pack_binary(q), doc_bits, pool)
    if doc_vecs is not None:
        scores = np.asarray(doc_vecs, dtype=np.float32)[cand] @ q
    elif doc_codes is not None and cal is not None:
        scores = int8_scores(q, np.asarray(doc_codes)[cand], cal)
    else:
        bits = doc_bits.shape[-1] * 8
        return cand[:k], (1.0 - 2.0 * dist[:k] / bits).astype(np.float32)
    order = np.argsort(-scores, kind="stable")[:k]
    return cand[order], scores[order].astype(np.float32)


def recall_at_k(found: Sequence[int] | np.ndarray, truth: Sequence[int] | np.ndarray) -> float:
    """Share of the true top-k ids found (for comparing a quantized search with float)."""
    truth_set = {int(t) for t in truth}
    if not truth_set:
        return 1.0
    return len(truth_set & {int(f) for f in found}) / len(truth_set)
