"""Qwen3-Reranker pipeline against a hand-written reference, on a tiny real model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch  # a hard dependency: if it is missing, fail here, loudly

from codesearch.search.rerank import (
    CODE_SEARCH_INSTRUCTION,
    QWEN3_BODY,
    QWEN3_PREFIX,
    QWEN3_SUFFIX,
    Qwen3Reranker,
    RerankerSpecError,
    RerankerUnavailableError,
    load_reranker,
)
from tests.tiny_reranker import build_tiny_reranker

# Typed out again from docs/models.md rather than imported, so a typo in the
# module's template cannot also be in the reference.
REF_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
REF_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

QUERY = "read a csv file and count the nulls"
DOCS = [
    "def read_csv(path: str) -> list[dict[str, str]]:\n    with open(path) as handle:\n"
    "        return list(csv.DictReader(handle))\n",
    "class Retry:\n    def backoff(self, attempt: int) -> float:\n        return 0.5 * 2 ** attempt\n",
    "function parseArgs(argv) { return argv.slice(2).map((a) => a.trim()); }",
    "x",
    "",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_reranker(tmp_path_factory.mktemp("tiny-qwen3-reranker"))


@pytest.fixture(scope="module")
def reranker(tiny_dir: Path) -> Qwen3Reranker:
    loaded = load_reranker(str(tiny_dir), batch_size=8, max_length=2048)
    assert isinstance(loaded, Qwen3Reranker)
    return loaded


@pytest.fixture(scope="module")
def reference_model(tiny_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, torch_dtype=torch.float32).eval()
    return tok, model


def reference_score(tok: Any, model: Any, instruction: str, query: str, doc: str) -> float:
    """The published recipe on one unpadded input: softmax over [no, yes] at the last position."""
    text = (
        REF_PREFIX + f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}" + REF_SUFFIX
    )
    ids = tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    return float(torch.softmax(torch.stack([logits[no], logits[yes]]), dim=0)[1])


def captured_rows(reranker: Qwen3Reranker, query: str, docs: list[str]) -> list[list[list[int]]]:
    """The unpadded token ids of every row of every batch the model actually received."""
    batches: list[list[list[int]]] = []

    def hook(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
        batches.append([row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True)])

    handle = reranker.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        reranker.score(query, docs)
    finally:
        handle.remove()
    return batches


def test_template_strings_are_the_published_ones() -> None:
    assert QWEN3_PREFIX == REF_PREFIX
    assert QWEN3_SUFFIX == REF_SUFFIX
    assert (
        QWEN3_BODY.format(instruction="I", query="Q", doc="D")
        == "<Instruct>: I\n<Query>: Q\n<Document>: D"
    )
    assert CODE_SEARCH_INSTRUCTION == (
        "Given a question about coding, retrieval code or passage that can solve user's question"
    )


def test_scores_equal_hand_written_reference(
    reranker: Qwen3Reranker, reference_model: tuple[Any, Any]
) -> None:
    tok, model = reference_model
    scores = reranker.score(QUERY, DOCS)
    expected = [reference_score(tok, model, CODE_SEARCH_INSTRUCTION, QUERY, d) for d in DOCS]
    assert len(scores) == len(DOCS)
    for got, want in zip(scores, expected, strict=True):
        assert abs(got - want) < 1e-4
    # The tiny model must tell documents apart, or equality above proves nothing.
    assert max(expected) - min(expected) > 1e-2


def test_custom_instruction_reaches_the_model(
    tiny_dir: Path, reference_model: tuple[Any, Any]
) -> None:
    tok, model = reference_model
    custom = "Given a natural-language description, retrieve the source code that implements it"
    scorer = load_reranker(str(tiny_dir), instruction=custom)
    got = scorer.score(QUERY, DOCS[:2])
    want = [reference_score(tok, model, custom, QUERY, d) for d in DOCS[:2]]
    default = [reference_score(tok, model, CODE_SEARCH_INSTRUCTION, QUERY, d) for d in DOCS[:2]]
    assert all(abs(g - w) < 1e-4 for g, w in zip(got, want, strict=True))
    assert any(abs(g - d) > 1e-4 for g, d in zip(got, default, strict=True))


def test_scores_do_not_depend_on_batch_composition(reranker: Qwen3Reranker) -> None:
    short = DOCS[2]
    longer = [DOCS[0] * 3, DOCS[1] * 5, DOCS[0] + DOCS[1]]
    alone = reranker.score(QUERY, [short])[0]
    together = reranker.score(QUERY, [*longer, short])
    assert abs(together[-1] - alone) < 1e-4
    for doc, score in zip(longer, together[:-1], strict=True):
        assert abs(reranker.score(QUERY, [doc])[0] - score) < 1e-4


def test_left_padding_and_length_sorted_batches(tiny_dir: Path) -> None:
    scorer = load_reranker(str(tiny_dir), batch_size=2)
    assert isinstance(scorer, Qwen3Reranker)
    docs = ["a", DOCS[0] * 4, "b c", DOCS[1] * 2, DOCS[2]]
    seen: list[Any] = []

    def hook(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["attention_mask"].clone())

    handle = scorer.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        scorer.score(QUERY, docs)
    finally:
        handle.remove()
    lengths = [int(n) for mask in seen for n in mask.sum(dim=1)]
    assert lengths == sorted(lengths, reverse=True)  # longest first, similar lengths together
    for mask in seen:
        assert bool(mask[:, -1].all())  # every row ends at the last position: left padding


def test_truncation_cuts_only_the_end_of_the_document(tiny_dir: Path) -> None:
    max_length = 160
    scorer = load_reranker(str(tiny_dir), max_length=max_length)
    assert isinstance(scorer, Qwen3Reranker)
    tok = scorer.tokenizer
    long_doc = "def first_line():\n    pass\n" + "value = compute(value) + 1\n" * 200
    rows = [row for batch in captured_rows(scorer, QUERY, [long_doc, "short"]) for row in batch]
    long_row = max(rows, key=len)
    assert len(long_row) == max_length
    pre = tok(REF_PREFIX, add_special_tokens=False)["input_ids"]
    suf = tok(REF_SUFFIX, add_special_tokens=False)["input_ids"]
    assert long_row[: len(pre)] == pre
    assert long_row[-len(suf) :] == suf
    text = tok.decode(long_row)
    assert f"<Query>: {QUERY}\n<Document>: def first_line():" in text
    assert "value = compute" in text and text.count("value = compute") < 200

    # Identical to docs/models.md (Reranking): the body truncated to MAX_LEN - len(pre) - len(suf).
    body = f"<Instruct>: {CODE_SEARCH_INSTRUCTION}\n<Query>: {QUERY}\n<Document>: {long_doc}"
    cut = tok(
        [body],
        add_special_tokens=False,
        truncation="longest_first",
        max_length=max_length - len(pre) - len(suf),
    )["input_ids"][0]
    assert long_row == pre + cut + suf


def test_a_long_query_is_never_cut(tiny_dir: Path) -> None:
    scorer = load_reranker(str(tiny_dir), max_length=64)
    assert isinstance(scorer, Qwen3Reranker)
    query = "find the function that " + "reads csv files and counts nulls " * 10
    row = scorer.encode(query, ["def read_csv(path): pass"])[0]
    text = scorer.tokenizer.decode(row)
    assert f"<Query>: {query}\n<Document>:" in text
    assert text.endswith(REF_SUFFIX)
    assert len(scorer.score(query, ["def read_csv(path): pass"])) == 1


def test_loaded_once_per_process(tiny_dir: Path, reranker: Qwen3Reranker) -> None:
    assert load_reranker(str(tiny_dir), batch_size=8, max_length=2048) is reranker
    assert reranker.score(QUERY, []) == []


def test_missing_model_gives_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(RerankerUnavailableError) as err:
        load_reranker("qwen3-reranker-0.6b", instruction="not cached anywhere")
    message = str(err.value)
    assert "\n" not in message
    assert "Qwen/Qwen3-Reranker-0.6B" in message
    assert str(tmp_path / "empty-cache") in message
    assert "hf download" in message


def test_missing_local_folder_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(RerankerUnavailableError, match="no model at") as err:
        load_reranker("qwen3-reranker-4b", model_path=str(tmp_path / "nothing-here"))
    assert "\n" not in str(err.value)
    with pytest.raises(RerankerSpecError, match="unknown reranker 'no-such-reranker'"):
        load_reranker("no-such-reranker")


def test_aliases_resolve_to_registry_profiles() -> None:
    from codesearch.search.rerank import RERANKERS, find_profile

    assert set(RERANKERS) == {"qwen3-reranker-0.6b", "qwen3-reranker-4b", "qwen3-reranker-8b"}
    assert find_profile("Qwen/Qwen3-Reranker-8B") is RERANKERS["qwen3-reranker-8b"]
    assert find_profile("qwen3-reranker") is RERANKERS["qwen3-reranker-0.6b"]
    assert find_profile("QWEN3-RERANKER-4B") is RERANKERS["qwen3-reranker-4b"]
    assert find_profile("bge-reranker") is None


def test_registry_name_with_a_local_model_path(tiny_dir: Path, reranker: Qwen3Reranker) -> None:
    named = load_reranker("qwen3-reranker-0.6b", model_path=str(tiny_dir))
    assert isinstance(named, Qwen3Reranker)
    assert named.name == "qwen3-reranker-0.6b"
    assert named.score(QUERY, DOCS[:3]) == pytest.approx(reranker.score(QUERY, DOCS[:3]), abs=1e-6)


def test_rerank_orders_best_first(reranker: Qwen3Reranker) -> None:
    from codesearch.search.rerank import rerank

    scores = reranker.score(QUERY, DOCS)
    order = rerank(reranker, QUERY, DOCS)
    assert sorted(i for i, _ in order) == list(range(len(DOCS)))
    assert [s for _, s in order] == sorted(scores, reverse=True)
    assert all(scores[i] == pytest.approx(s, abs=1e-6) for i, s in order)


def test_broken_model_folder_is_one_line(tmp_path: Path, tiny_dir: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_dir / "config.json").read_text())
    with pytest.raises(RerankerUnavailableError, match="cannot load") as err:
        load_reranker(str(broken))
    assert "\n" not in str(err.value)
