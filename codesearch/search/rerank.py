"""Second stage of search: a reranker reads the query and each candidate together.

`load_reranker(spec)` returns a `Reranker` whose `score(query, documents)` gives one
float per document (higher = more relevant). Backends:

* Qwen3-Reranker (registry names `qwen3-reranker-0.6b/-4b/-8b`, or a local path to
  any Qwen3-Reranker-style causal LM), run exactly as published (docs/models.md, Reranking).
* Any sentence-transformers CrossEncoder: `cross-encoder:<hub-id-or-path>`, or a
  bare local path whose config is not a causal LM.
* Rerank APIs: `openai-rerank:<model>@<base-url>` (vLLM, Infinity, SGLang, Cohere,
  Jina: `{model, query, documents, top_n}`), `tei-rerank:<base-url>` (TEI:
  `{query, texts}`) and `voyage-rerank:<model>` (Voyage, key in VOYAGE_API_KEY).

Importing this module is cheap: torch and transformers load only with a local model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from codesearch.core.http import RemoteError, post_json
from codesearch.embed.local import ModelUnavailableError

if TYPE_CHECKING:
    import torch

# The code-search task string Qwen used for its MTEB-Code evaluation (typos are
# original and were used at eval time); shared with the Qwen3 embedder.
CODE_SEARCH_INSTRUCTION = (
    "Given a question about coding, retrieval code or passage that can solve user's question"
)

# Qwen3-Reranker template, verbatim from the tech report / HF example (docs/models.md, Reranking).
QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the "
    'Query and the Instruct provided. Note that the answer can only be "yes" or "no".'
    "<|im_end|>\n<|im_start|>user\n"
)
QWEN3_BODY = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

RERANK_API_KEY_ENV = "CODESEARCH_RERANK_API_KEY"
VOYAGE_DEFAULT_BASE_URL = "https://api.voyageai.com/v1"


class Reranker(Protocol):
    name: str

    def score(self, query: str, documents: Sequence[str]) -> list[float]: ...


class RerankerUnavailableError(ModelUnavailableError):
    """The reranker cannot run here; the message is one line, safe to print.

    A ModelUnavailableError, so the CLI's handler for missing models catches it too.
    """


class RerankerSpecError(ValueError):
    """The reranker spec is not understood; the message is one line."""


@dataclass(frozen=True)
class RerankerProfile:
    name: str
    hub_id: str
    aliases: tuple[str, ...] = ()
    revision: str | None = None  # None: no commit verified yet; the hub's main is used
    kind: str = "qwen3"  # qwen3 (causal LM, yes/no template) | cross-encoder
    params: str = ""
    layers: int = 0
    hidden: int = 0
    licence: str = ""
    max_length: int = 2048  # CPU default; the model supports 32K


RERANKERS: dict[str, RerankerProfile] = {
    "qwen3-reranker-0.6b": RerankerProfile(
        name="qwen3-reranker-0.6b",
        hub_id="Qwen/Qwen3-Reranker-0.6B",
        aliases=("qwen3-reranker", "qwen3-reranker-0.6B", "Qwen3-Reranker-0.6B"),
        params="0.6B",
        layers=28,
        hidden=1024,
        licence="Apache-2.0",
    ),
    "qwen3-reranker-4b": RerankerProfile(
        name="qwen3-reranker-4b",
        hub_id="Qwen/Qwen3-Reranker-4B",
        aliases=("qwen3-reranker-4B", "Qwen3-Reranker-4B"),
        params="4B",
        layers=36,
        hidden=2560,
        licence="Apache-2.0",
    ),
    "qwen3-reranker-8b": RerankerProfile(
        name="qwen3-reranker-8b",
        hub_id="Qwen/Qwen3-Reranker-8B",
        aliases=("qwen3-reranker-8B", "Qwen3-Reranker-8B"),
        params="8B",
        layers=36,
        hidden=4096,
        licence="Apache-2.0",
    ),
}

DEFAULT_RERANKER = "qwen3-reranker-0.6b"


def find_profile(name: str) -> RerankerProfile | None:
    key = name.strip()
    if key in RERANKERS:
        return RERANKERS[key]
    lowered = key.lower()
    for profile in RERANKERS.values():
        names = (profile.name, profile.hub_id, *profile.aliases)
        if lowered in (n.lower() for n in names):
            return profile
    return None


# --------------------------------------------------------------------------- local weights


def _hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _resolve_hub_weights(label: str, hub_id: str, revision: str | None) -> str:
    """Return a loadable id for `hub_id` if its weights are in the HF cache, else fail fast.

    Nothing is downloaded at query time: a silent multi-GB download (or five slow
    retries offline) is worse than one clear line saying how to fetch the model.
    """
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(hub_id, "config.json", revision=revision)
    if not isinstance(cached, str):
        raise RerankerUnavailableError(
            f"reranker {label} ({hub_id}) is not on this machine: looked in the Hugging Face "
            f"cache {_hf_cache_dir()}; get it with `hf download {hub_id}` where there is "
            "internet (or set HF_HOME to a cache that has it, or pass a local model path)"
        )
    return hub_id


def _read_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _is_causal_lm(path: Path) -> bool:
    architectures = _read_config(path).get("architectures") or []
    return any(str(arch).endswith("ForCausalLM") for arch in architectures)


def _require_local_dir(label: str, path: str) -> Path:
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise RerankerUnavailableError(
            f"reranker {label}: no model at {folder} (expected a folder with config.json, "
            "as written by save_pretrained or `hf download`)"
        )
    return folder


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _quiet_transformers() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


# --------------------------------------------------------------------------- Qwen3-Reranker


class Qwen3Reranker:
    """Qwen3-Reranker run as published: P("yes") at the next-token position.

    float32 on CPU, left padding, batches of similar length, only the last
    position's logits computed. The document is the only part ever truncated.
    """

    def __init__(
        self,
        name: str,
        source: str,
        instruction: str | None = None,
        revision: str | None = None,
        batch_size: int = 8,
        max_length: int = 2048,
        local_files_only: bool = True,
    ) -> None:
        _quiet_transformers()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = name
        self.instruction = instruction or CODE_SEARCH_INSTRUCTION
        self.batch_size = max(1, batch_size)
        self.max_length = max_length
        try:
            # local_files_only: weights were found in the cache or a folder, so
            # nothing may touch the network (offline it would retry for minutes).
            self.tokenizer = AutoTokenizer.from_pretrained(
                source, revision=revision, padding_side="left", local_files_only=local_files_only
            )
            self.model = AutoModelForCausalLM.from_pretrained(
                source,
                revision=revision,
                dtype=torch.float32,
                local_files_only=local_files_only,
            ).eval()
        except Exception as err:  # any loader failure must reach the user as one line
            raise RerankerUnavailableError(
                f"reranker {name}: cannot load {source}: {_first_line(err)}"
            ) from None
        if not getattr(self.tokenizer, "is_fast", False):
            raise RerankerUnavailableError(
                f"reranker {name}: {source} has no fast tokenizer (tokenizer.json), "
                "which document-only truncation needs"
            )
        self.yes_id = self._single_token_id("yes")
        self.no_id = self._single_token_id("no")
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else self.tokenizer.eos_token_id or 0)
        self.prefix_ids: list[int] = self._encode(QWEN3_PREFIX)
        self.suffix_ids: list[int] = self._encode(QWEN3_SUFFIX)
        self.torch = torch

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _single_token_id(self, token: str) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise RerankerUnavailableError(
                f"reranker {self.name}: tokenizer has no single token {token!r}; "
                "not a Qwen3-Reranker-style model"
            )
        return int(token_id)

    def encode(self, query: str, documents: Sequence[str]) -> list[list[int]]:
        """Token ids of each full input (prefix + body + suffix), unpadded.

        The body is tokenized whole, exactly as the published recipe does, and
        token offsets locate where the document starts, so truncation drops
        tokens from the end of the document only, never the query.
        """
        head = QWEN3_BODY.format(instruction=self.instruction, query=query, doc="")
        bodies = [head + doc for doc in documents]
        encoded = self.tokenizer(bodies, add_special_tokens=False, return_offsets_mapping=True)
        budget = self.max_length - len(self.prefix_ids) - len(self.suffix_ids)
        doc_start = len(head)
        inputs: list[list[int]] = []
        for ids, offsets in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True):
            # A token that overlaps the document (e.g. " def" spanning ": " and "def")
            # counts as document; everything before it is instruction + query.
            n_head = sum(1 for _, end in offsets if end <= doc_start)
            keep = max(budget, n_head)
            inputs.append(self.prefix_ids + list(ids[:keep]) + self.suffix_ids)
        return inputs

    def _batch(self, rows: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        """Left-pad rows into model inputs; positions count real tokens only."""
        torch = self.torch
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        # Explicit positions make a padded row compute exactly what it computes
        # alone (RoPE is relative, so this only removes float drift).
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        return {"input_ids": input_ids, "attention_mask": mask, "position_ids": positions}

    def _yes_probability(self, rows: Sequence[list[int]]) -> list[float]:
        torch = self.torch
        batch = self._batch(rows)
        with torch.inference_mode():
            logits = self.model(**batch, logits_to_keep=1, use_cache=False).logits[:, -1, :]
            pair = torch.stack([logits[:, self.no_id], logits[:, self.yes_id]], dim=1).float()
            return torch.log_softmax(pair, dim=1)[:, 1].exp().tolist()

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        inputs = self.encode(query, documents)
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]), reverse=True)
        scores = [0.0] * len(inputs)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for index, value in zip(
                chunk, self._yes_probability([inputs[i] for i in chunk]), strict=True
            ):
                scores[index] = float(value)
        return scores


# --------------------------------------------------------------------------- CrossEncoder


def _cross_encoder_limit(model: Any, wanted: int) -> int:
    """The longest input the model can take: longer pairs would overflow its positions."""
    limits = [wanted]
    tokenizer_limit = getattr(model.tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    config = getattr(getattr(model, "model", None), "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    return min(limits)


class CrossEncoderReranker:
    """Any sentence-transformers CrossEncoder (BERT/ModernBERT/XLM-R rerankers...)."""

    def __init__(self, name: str, source: str, batch_size: int = 8, max_length: int = 2048) -> None:
        _quiet_transformers()
        from sentence_transformers import CrossEncoder

        self.name = name
        self.batch_size = max(1, batch_size)
        try:
            self.model = CrossEncoder(source, device="cpu", local_files_only=True)
        except Exception as err:  # any loader failure must reach the user as one line
            raise RerankerUnavailableError(
                f"reranker {name}: cannot load {source}: {_first_line(err)}"
            ) from None
        self.max_length = _cross_encoder_limit(self.model, max_length)
        # sentence-transformers 5.x renamed max_length to max_seq_length.
        attribute = "max_seq_length" if hasattr(self.model, "max_seq_length") else "max_length"
        setattr(self.model, attribute, self.max_length)

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        values = self.model.predict(
            [(query, doc) for doc in documents],
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [float(v) for v in values.reshape(len(documents), -1)[:, -1]]


# --------------------------------------------------------------------------- remote APIs


def parse_rerank_response(answer: Any, count: int, source: str) -> list[float]:
    """Scores in input order from any rerank answer shape.

    Cohere/Jina/vLLM/Infinity: `{results: [{index, relevance_score}]}`; Voyage:
    `{data: [...]}`; TEI/SGLang: a bare list of `{index, score}`.
    """
    items = answer
    if isinstance(answer, Mapping):
        items = answer.get("results", answer.get("data"))
    if not isinstance(items, list):
        raise RemoteError(f"{source} answered without a results/data list")
    scores: list[float | None] = [None] * count
    for item in items:
        if not isinstance(item, Mapping) or "index" not in item:
            raise RemoteError(f"{source} answered a result without an index")
        value = item.get("relevance_score", item.get("score"))
        index = item["index"]
        if (
            not isinstance(index, int)
            or not 0 <= index < count
            or not isinstance(value, int | float)
        ):
            raise RemoteError(f"{source} answered a bad result: {json.dumps(item)[:120]}")
        scores[index] = float(value)
    missing = sum(1 for s in scores if s is None)
    if missing:
        raise RemoteError(f"{source} returned no score for {missing} of {count} documents")
    return [float(s) for s in scores if s is not None]


def _rerank_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/rerank") else f"{base}/rerank"


@dataclass
class RemoteReranker:
    """A rerank HTTP API; `body` builds one request for a page of documents."""

    name: str
    url: str
    body: Callable[[str, Sequence[str]], dict[str, Any]]
    headers: dict[str, str]
    page_size: int = 256

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        scores: list[float] = []
        # Paging keeps each request under the servers' limits (TEI: 32 by default);
        # rerank scores are per pair, so pages do not change them.
        for start in range(0, len(documents), self.page_size):
            page = list(documents[start : start + self.page_size])
            answer = post_json(self.url, self.body(query, page), headers=self.headers)
            scores.extend(parse_rerank_response(answer, len(page), self.url))
        return scores


def _bearer(env_name: str) -> dict[str, str]:
    key = os.environ.get(env_name, "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


def _split_model_url(rest: str, spec: str) -> tuple[str, str]:
    model, sep, base_url = rest.partition("@")
    if not sep or not model or not base_url.startswith(("http://", "https://")):
        raise RerankerSpecError(
            f"bad reranker '{spec}': expected openai-rerank:<model>@<http(s)://base-url>"
        )
    return model, base_url


def _openai_reranker(spec: str, rest: str) -> RemoteReranker:
    model, base_url = _split_model_url(rest, spec)

    def body(query: str, docs: Sequence[str]) -> dict[str, Any]:
        return {"model": model, "query": query, "documents": list(docs), "top_n": len(docs)}

    return RemoteReranker(spec, _rerank_url(base_url), body, _bearer(RERANK_API_KEY_ENV))


def _tei_reranker(spec: str, rest: str) -> RemoteReranker:
    base_url = rest.partition("@")[2] if "@" in rest else rest
    if not base_url.startswith(("http://", "https://")):
        raise RerankerSpecError(f"bad reranker '{spec}': expected tei-rerank:<http(s)://base-url>")

    def body(query: str, docs: Sequence[str]) -> dict[str, Any]:
        return {"query": query, "texts": list(docs), "raw_scores": False, "truncate": True}

    return RemoteReranker(spec, _rerank_url(base_url), body, _bearer(RERANK_API_KEY_ENV), 32)


def _voyage_reranker(spec: str, model: str) -> RemoteReranker:
    key = os.environ.get("VOYAGE_API_KEY", "").strip()
    if not key:
        raise RerankerUnavailableError(f"reranker {spec}: set VOYAGE_API_KEY to use the Voyage API")
    base_url = os.environ.get("VOYAGE_BASE_URL", VOYAGE_DEFAULT_BASE_URL)

    def body(query: str, docs: Sequence[str]) -> dict[str, Any]:
        return {
            "query": query,
            "documents": list(docs),
            "model": model or "rerank-2.5",
            "top_k": len(docs),
            "truncation": True,
        }

    headers = {"Authorization": f"Bearer {key}"}
    return RemoteReranker(spec, _rerank_url(base_url), body, headers, page_size=1000)


# --------------------------------------------------------------------------- use


def rerank(reranker: Reranker, query: str, documents: Sequence[str]) -> list[tuple[int, float]]:
    """(index, score) pairs best first; ties keep the retrieval order."""
    scores = reranker.score(query, documents)
    if len(scores) != len(documents):
        raise RemoteError(
            f"reranker {reranker.name} gave {len(scores)} scores for {len(documents)} documents"
        )
    return sorted(enumerate(scores), key=lambda pair: -pair[1])


# --------------------------------------------------------------------------- loading

_LOADED: dict[tuple[object, ...], Reranker] = {}


# `--rerank SCHEME:REST` for a reranker served by an API: scheme -> its client.
REMOTE_RERANKERS: dict[str, Callable[[str, str], RemoteReranker]] = {
    "openai-rerank": _openai_reranker,  # openai-rerank:<model>@<url> (Cohere/Jina protocol)
    "tei-rerank": _tei_reranker,  # tei-rerank:<url>
    "voyage-rerank": _voyage_reranker,  # voyage-rerank:<model>
}


def _build(
    spec: str, instruction: str | None, model_path: str | None, batch_size: int, max_length: int
) -> Reranker:
    scheme, sep, rest = spec.partition(":")
    remote = REMOTE_RERANKERS.get(scheme) if sep else None
    if remote is not None:
        return remote(spec, rest)
    if sep and scheme == "cross-encoder":
        source = model_path or rest
        if Path(source).expanduser().exists():
            source = str(_require_local_dir(spec, source))
        else:
            source = _resolve_hub_weights(spec, rest, None)
        return CrossEncoderReranker(spec, source, batch_size, max_length)

    profile = find_profile(spec)
    if profile is not None:
        if model_path:
            source, revision = str(_require_local_dir(profile.name, model_path)), None
        else:
            source = _resolve_hub_weights(profile.name, profile.hub_id, profile.revision)
            revision = profile.revision
        if profile.kind == "cross-encoder":
            return CrossEncoderReranker(profile.name, source, batch_size, max_length)
        return Qwen3Reranker(profile.name, source, instruction, revision, batch_size, max_length)

    path = Path(model_path or spec).expanduser()
    if path.exists():
        folder = _require_local_dir(spec, str(path))
        if _is_causal_lm(folder):
            return Qwen3Reranker(spec, str(folder), instruction, None, batch_size, max_length)
        return CrossEncoderReranker(spec, str(folder), batch_size, max_length)

    known = ", ".join(sorted(RERANKERS))
    raise RerankerSpecError(
        f"unknown reranker '{spec}' (known: {known}; or cross-encoder:<hub-id-or-path>, "
        "a local model folder, openai-rerank:<model>@<url>, tei-rerank:<url>, "
        "voyage-rerank:<model>)"
    )


def load_reranker(
    spec: str,
    instruction: str | None = None,
    model_path: str | None = None,
    batch_size: int = 8,
    max_length: int = 2048,
) -> Reranker:
    """The reranker for `spec`, loaded once per process and reused."""
    spec = spec.strip()
    if not spec:
        raise RerankerSpecError("empty reranker name")
    key = (spec, instruction, model_path, batch_size, max_length)
    if key in _LOADED:
        return _LOADED[key]
    reranker = _build(spec, instruction, model_path, batch_size, max_length)
    # API clients are cheap and read keys/URLs from the environment: rebuild them.
    if not isinstance(reranker, RemoteReranker):
        _LOADED[key] = reranker
    return reranker
