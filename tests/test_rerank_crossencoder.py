"""Any sentence-transformers CrossEncoder, here a tiny random BERT built on the spot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch  # a hard dependency: if it is missing, fail here, loudly

from codesearch.search.rerank import CrossEncoderReranker, load_reranker

WORDS = "def class return parse read csv file count null args cache main the a of and".split()


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("_():.,=")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters]
    vocab += [f"##{c}" for c in letters]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
        initializer_range=0.5,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    return folder


def reference(folder: Path, query: str, docs: list[str]) -> list[float]:
    """A cross-encoder's score: sigmoid of its single logit for the (query, doc) pair."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    out = []
    for doc in docs:
        batch = tok(query, doc, return_tensors="pt")
        with torch.no_grad():
            out.append(float(torch.sigmoid(model(**batch).logits[0, 0])))
    return out


def test_local_cross_encoder_by_path_and_prefix(tiny_bert: Path) -> None:
    query = "parse the args"
    docs = ["def parse_args(args): return args", "class cache", "read csv file and count null"]
    bare = load_reranker(str(tiny_bert))  # not a causal LM: loaded as a CrossEncoder
    prefixed = load_reranker(f"cross-encoder:{tiny_bert}")
    assert isinstance(bare, CrossEncoderReranker)
    assert isinstance(prefixed, CrossEncoderReranker)
    want = reference(tiny_bert, query, docs)
    got = bare.score(query, docs)
    assert all(abs(g - w) < 1e-4 for g, w in zip(got, want, strict=True))
    assert max(want) - min(want) > 1e-3
    assert prefixed.score(query, docs[::-1]) == pytest.approx(want[::-1], abs=1e-4)


def test_cross_encoder_length_is_capped_by_the_model(tiny_bert: Path) -> None:
    reranker = load_reranker(f"cross-encoder:{tiny_bert}", max_length=4096)
    assert isinstance(reranker, CrossEncoderReranker)
    long_doc = "read csv file " * 400  # far beyond 128 positions: must be truncated, not crash
    (score,) = reranker.score("read csv", [long_doc])
    assert 0.0 <= score <= 1.0


def test_uncached_hub_cross_encoder_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    from codesearch.search.rerank import RerankerUnavailableError

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(RerankerUnavailableError) as err:
        load_reranker("cross-encoder:cross-encoder/ms-marco-MiniLM-L6-v2")
    message = str(err.value)
    assert "\n" not in message
    assert "cross-encoder/ms-marco-MiniLM-L6-v2" in message and str(tmp_path) in message


# sentence-transformers' own Qwen3-Reranker chat template (its test-suite; docs/models.md, Reranking).
ST_QWEN3_TEMPLATE = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
    '<Instruct>: {{ messages | selectattr("role", "eq", "system") | map(attribute="content") '
    '| first | default("Given a web search query, retrieve relevant passages that answer the '
    'query") }}\n'
    '<Query>: {{ messages | selectattr("role", "eq", "query") | map(attribute="content") '
    "| first }}\n"
    '<Document>: {{ messages | selectattr("role", "eq", "document") | map(attribute="content") '
    "| first }}<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n\n"
)


def test_qwen3_pipeline_matches_sentence_transformers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """An independent implementation of the same recipe gives the same P(yes)."""
    from sentence_transformers import CrossEncoder

    from codesearch.search.rerank import CODE_SEARCH_INSTRUCTION, Qwen3Reranker
    from tests.tiny_reranker import build_tiny_reranker

    folder = build_tiny_reranker(tmp_path_factory.mktemp("tiny-qwen3-for-st"))
    query = "read a csv file and count nulls"
    docs = ["def read_csv(path):\n    return open(path).read()", "class Retry: pass", "x" * 300]
    ours = load_reranker(str(folder))
    assert isinstance(ours, Qwen3Reranker)
    theirs = CrossEncoder(
        str(folder),
        device="cpu",
        prompts={"code": CODE_SEARCH_INSTRUCTION},
        default_prompt_name="code",
        processor_kwargs={"chat_template": ST_QWEN3_TEMPLATE},
    )
    want = [float(v) for v in theirs.predict([(query, d) for d in docs])]
    got = ours.score(query, docs)
    assert all(abs(g - w) < 1e-4 for g, w in zip(got, want, strict=True))
    assert max(want) - min(want) > 1e-2
