"""Quantized storage: calibrated int8 and packed binary with rescoring."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codesearch.embed.quantize import (
    Calibration,
    binary_search,
    dequantize_int8,
    float_topk,
    hamming_distances,
    hamming_topk,
    int8_scores,
    int8_topk,
    pack_binary,
    quantize_int8,
    recall_at_k,
)

DIM = 256


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors (like embeddings of related code) and queries near some docs."""
    rng = np.random.default_rng(42)
    centers = rng.normal(size=(40, DIM))
    labels = rng.integers(0, 40, size=3000)
    docs = _unit(centers[labels] + 0.9 * rng.normal(size=(3000, DIM)))
    picks = rng.choice(3000, size=30, replace=False)
    queries = _unit(docs[picks] + 0.05 * rng.normal(size=(30, DIM)))
    return docs, queries


def test_calibration_ranges_are_reused_for_later_batches(
    corpus: tuple[np.ndarray, np.ndarray],
) -> None:
    docs, _ = corpus
    cal = Calibration.from_embeddings(docs[:1000])
    whole = quantize_int8(docs, cal)
    # A row's code depends only on the stored ranges, never on its batch-mates.
    assert np.array_equal(quantize_int8(docs[2000:2005], cal), whole[2000:2005])
    assert np.array_equal(quantize_int8(docs[7], cal), whole[7])
    # Per-batch ranges (what encode(precision="int8") does) would give other codes.
    own = Calibration.from_embeddings(docs[2000:2005])
    assert not np.array_equal(quantize_int8(docs[2000:2005], own), whole[2000:2005])


def test_int8_roundtrip_error_within_half_a_step(corpus: tuple[np.ndarray, np.ndarray]) -> None:
    docs, _ = corpus
    cal = Calibration.from_embeddings(docs)
    codes = quantize_int8(docs, cal)
    assert codes.dtype == np.int8 and codes.shape == docs.shape
    back = dequantize_int8(codes, cal)
    assert back.dtype == np.float32
    assert np.all(np.abs(back - docs) <= cal.steps / 2 + 1e-6)
    assert codes.min() == -128 and codes.max() == 127  # the whole range is used


def test_values_outside_the_calibrated_range_clip() -> None:
    cal = Calibration(mins=np.array([-1.0, 0.0], np.float32), maxs=np.array([1.0, 1.0], np.float32))
    codes = quantize_int8(np.array([[5.0, -3.0], [-1.0, 1.0]], np.float32), cal)
    assert codes.tolist() == [[127, -128], [-128, 127]]


def test_calibration_survives_json(corpus: tuple[np.ndarray, np.ndarray]) -> None:
    docs, _ = corpus
    cal = Calibration.from_embeddings(docs, sample=500)
    assert cal.count == 500
    restored = Calibration.from_json(json.loads(json.dumps(cal.to_json())))
    assert restored.dim == DIM
    assert np.array_equal(quantize_int8(docs[:50], restored), quantize_int8(docs[:50], cal))
    with pytest.raises(ValueError, match="scheme"):
        Calibration.from_json({"mins": [0.0], "maxs": [1.0]})


def test_wrong_dimension_is_refused(corpus: tuple[np.ndarray, np.ndarray]) -> None:
    docs, _ = corpus
    cal = Calibration.from_embeddings(docs)
    with pytest.raises(ValueError, match="256"):
        quantize_int8(docs[:, :128], cal)


def test_int8_scores_match_dequantized_dot_and_keep_ranking(
    corpus: tuple[np.ndarray, np.ndarray],
) -> None:
    docs, queries = corpus
    cal = Calibration.from_embeddings(docs[:1000])
    codes = quantize_int8(docs, cal)
    scores = int8_scores(queries, codes, cal)
    assert scores.shape == (len(queries), len(docs))
    assert np.allclose(scores, queries @ dequantize_int8(codes, cal).T, atol=1e-4)
    assert np.allclose(int8_scores(queries[3], codes, cal), scores[3], atol=1e-5)
    recalls = []
    for q in queries:
        truth, _ = float_topk(q, docs, 10)
        found, _ = int8_topk(q, codes, cal, 10)
        recalls.append(recall_at_k(found, truth))
    assert np.mean(recalls) >= 0.9


def test_pack_binary_bits() -> None:
    x = np.array([[1.0, -1.0, 0.0, 2.0, -0.5, 3.0, 1.0, -2.0, 0.1]], np.float32)
    packed = pack_binary(x)
    assert packed.dtype == np.uint8 and packed.shape == (1, 2)
    assert packed[0, 0] == 0b10010110  # x > 0, most significant bit first
    assert packed[0, 1] == 0b10000000  # the 9th bit, zero-padded


def test_hamming_topk_matches_brute_force(corpus: tuple[np.ndarray, np.ndarray]) -> None:
    docs, queries = corpus
    bits = pack_binary(docs)
    assert bits.shape == (len(docs), DIM // 8)
    qbits = pack_binary(queries)
    brute = (np.unpackbits(qbits[:, None, :], axis=-1) != np.unpackbits(bits, axis=-1)).sum(-1)
    assert np.array_equal(hamming_distances(qbits, bits), brute)
    idx, dist = hamming_topk(qbits[0], bits, 15)
    assert np.array_equal(dist, np.sort(brute[0])[:15])
    assert np.array_equal(brute[0][idx], dist)
    batch_idx, _ = hamming_topk(qbits, bits, 15)
    assert np.array_equal(batch_idx[0], idx)


def test_hamming_ties_are_ordered_by_index() -> None:
    bits = np.array([[0b1111], [0b0000], [0b0001], [0b0000]], dtype=np.uint8)
    idx, dist = hamming_topk(np.array([0], np.uint8), bits, 3)
    assert idx.tolist() == [1, 3, 2] and dist.tolist() == [0, 0, 1]


def test_binary_search_with_rescoring_recovers_float_order(
    corpus: tuple[np.ndarray, np.ndarray],
) -> None:
    docs, queries = corpus
    bits = pack_binary(docs)
    cal = Calibration.from_embeddings(docs[:1000])
    codes = quantize_int8(docs, cal)
    plain, float_rescored, int8_rescored = [], [], []
    exact_order = 0
    for q in queries:
        truth, truth_scores = float_topk(q, docs, 10)
        hamming_only, _ = binary_search(q, bits, 10)
        plain.append(recall_at_k(hamming_only, truth))
        found, scores = binary_search(q, bits, 10, candidates=200, doc_vecs=docs)
        float_rescored.append(recall_at_k(found, truth))
        exact_order += int(np.array_equal(found, truth))
        assert np.all(np.diff(scores) <= 0)
        found8, _ = binary_search(q, bits, 10, candidates=200, doc_codes=codes, cal=cal)
        int8_rescored.append(recall_at_k(found8, truth))
    assert np.mean(float_rescored) >= 0.97
    assert np.mean(int8_rescored) >= 0.9
    assert exact_order >= 0.8 * len(queries)  # same ids in the same order
    assert np.mean(float_rescored) > np.mean(plain)  # rescoring is what recovers it
