"""Remote embedding backends: OpenAI-compatible `/v1/embeddings` and the Voyage API.

Both implement the `Embedder` protocol of `codesearch.embed.base`. No server applies a
code-search instruction for you (docs/models.md, Remote models), so an OpenAI-compatible
server gets the profile's prompts prepended client-side; Voyage gets
`input_type` (query/document), which makes its API prepend its own prompts.
Vectors are always truncated to the requested dimension and re-normalized
client-side: Infinity slices after normalizing, Ollama may not normalize.

Standard library + numpy only (no torch): `--model openai:…` answers fast.
API keys are read from the environment, sent as a header, and never printed,
stored in the profile, or written to the index.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from codesearch.core.errors import ModelUnavailableError
from codesearch.core.http import RemoteError, post_json
from codesearch.embed.base import Embedder, finalize_vectors
from codesearch.embed.registry import PRECISIONS, ModelProfile, validate_dim

VOYAGE_DEFAULT_URL = "https://api.voyageai.com/v1"
VOYAGE_MAX_ITEMS = 1000  # per request, Voyage docs
OPENAI_MAX_ITEMS = 128  # servers differ (OpenAI 2048, TEI 32 by default): stay modest
OPENAI_MAX_TOKENS = 100_000


def estimate_tokens(text: str) -> int:
    """Rough token count for batching: code runs about 3 characters per token."""
    return len(text) // 3 + 1


def plan_batches(texts: Sequence[str], max_items: int, max_tokens: int) -> Iterator[range]:
    """Consecutive index ranges with at most `max_items` texts and `max_tokens` estimated
    tokens each; one oversized text travels alone (the API truncates it)."""
    start, tokens = 0, 0
    for i, text in enumerate(texts):
        cost = estimate_tokens(text)
        if i > start and (i - start >= max_items or tokens + cost > max_tokens):
            yield range(start, i)
            start, tokens = i, 0
        tokens += cost
    if start < len(texts):
        yield range(start, len(texts))


def _parse_embeddings(answer: Any, expected: int, url: str) -> list[list[float]]:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or len(data) != expected:
        got = len(data) if isinstance(data, list) else "no"
        raise RemoteError(f"{url} returned {got} embeddings for {expected} inputs")
    try:
        ordered = sorted(data, key=lambda row: int(row.get("index", 0)))
        return [list(row["embedding"]) for row in ordered]
    except (TypeError, KeyError, ValueError, AttributeError):
        raise RemoteError(f"{url} answered without an embedding list in data[]") from None


class RemoteEmbedder:
    """Shared batching, retries, post-processing and key hygiene."""

    max_items: int = OPENAI_MAX_ITEMS
    max_tokens_per_request: int = OPENAI_MAX_TOKENS

    def __init__(
        self,
        profile: ModelProfile,
        url: str,
        dim: int | None,
        precision: str,
        api_key: str | None,
        *,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r} (choose {', '.join(PRECISIONS)})")
        self.profile = profile
        self.url = url
        self.requested_dim = validate_dim(profile, dim) if dim is not None else None
        self.dim = self.requested_dim or profile.dims
        self.precision = precision
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.__key = api_key  # name-mangled: not in vars() dumps of public fields

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.profile.hub_id!r}, url={self.url!r}, dim={self.dim})"

    @property
    def fingerprint(self) -> str:
        return self.profile.fingerprint(self.dim, self.precision)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.__key}"} if self.__key else {}

    def _post(self, payload: dict[str, Any]) -> Any:
        try:
            return post_json(
                self.url,
                payload,
                headers=self._headers(),
                timeout=self.timeout,
                retries=self.retries,
                backoff=self.backoff,
            )
        except RemoteError as err:
            message = str(err)
            if self.__key:
                message = message.replace(self.__key, "***")
            raise RemoteError(message) from None

    def _payload(self, inputs: list[str], kind: str) -> dict[str, Any]:
        raise NotImplementedError

    def _prompt(self, kind: str) -> str:
        return self.profile.query_prompt if kind == "query" else self.profile.document_prompt

    def _embed(self, texts: Sequence[str], kind: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prompt = self._prompt(kind)
        inputs = [prompt + text for text in texts]
        rows: list[list[float]] = []
        for batch in plan_batches(inputs, self.max_items, self.max_tokens_per_request):
            chunk = inputs[batch.start : batch.stop]
            rows.extend(
                _parse_embeddings(self._post(self._payload(chunk, kind)), len(chunk), self.url)
            )
        width = min(len(r) for r in rows)
        if width < self.dim:
            raise RemoteError(f"{self.url} returned {width}-d vectors, {self.dim} were requested")
        return finalize_vectors(np.asarray([r[: self.dim] for r in rows], np.float32), self.dim)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "document")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, "query")

    def model_input(self, text: str, kind: str = "document") -> str:
        return self._prompt(kind) + text

    def count_tokens(self, text: str) -> int:
        """An estimate: the server's tokenizer is not available here."""
        return estimate_tokens(self.model_input(text))


def _openai_key(base_url: str) -> str | None:
    explicit = os.environ.get("CODESEARCH_OPENAI_API_KEY")
    if explicit:
        return explicit
    # OPENAI_API_KEY only goes to OpenAI itself, never to an arbitrary server.
    host = urllib.parse.urlparse(base_url).hostname or ""
    return os.environ.get("OPENAI_API_KEY") if host == "api.openai.com" else None


class OpenAIEmbedder(RemoteEmbedder):
    """vLLM, SGLang, TEI, Infinity, Ollama or OpenAI through `POST {base}/embeddings`."""

    def __init__(
        self,
        profile: ModelProfile,
        dim: int | None = None,
        precision: str = "float32",
        *,
        batch_size: int = OPENAI_MAX_ITEMS,
        max_tokens_per_request: int = OPENAI_MAX_TOKENS,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        if not profile.base_url:
            raise ModelUnavailableError(
                f"{profile.name}: no base URL for the OpenAI-compatible server"
            )
        super().__init__(
            profile,
            profile.base_url.rstrip("/") + "/embeddings",
            dim,
            precision,
            api_key if api_key is not None else _openai_key(profile.base_url),
            timeout=timeout,
            retries=retries,
            backoff=backoff,
        )
        self.max_items = batch_size
        self.max_tokens_per_request = max_tokens_per_request
        if profile.dims == 0:
            # Unknown model: learn its size from one short request (also proves the server is up).
            native = len(
                _parse_embeddings(
                    self._post(self._payload(["dimension probe"], "document")), 1, self.url
                )[0]
            )
            self.profile = dataclasses.replace(profile, dims=native)
            if self.requested_dim is not None and self.requested_dim > native:
                raise RemoteError(
                    f"--dim {self.requested_dim} exceeds the model's {native} dimensions"
                )
            self.dim = self.requested_dim or native

    def _payload(self, inputs: list[str], kind: str) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.profile.hub_id,
            "input": inputs,
            "encoding_format": "float",
        }
        # Only ask for MRL truncation when needed: vLLM rejects `dimensions` for
        # models not flagged as matryoshka. We truncate client-side either way.
        if self.requested_dim is not None and self.requested_dim != self.profile.dims:
            payload["dimensions"] = self.requested_dim
        return payload


class VoyageEmbedder(RemoteEmbedder):
    """The Voyage API (`voyage-code-3`, `voyage-4*`); key from VOYAGE_API_KEY."""

    def __init__(
        self,
        profile: ModelProfile,
        dim: int | None = None,
        precision: str = "float32",
        *,
        max_tokens_per_request: int | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        key = os.environ.get("VOYAGE_API_KEY", "").strip()
        if not key:
            raise ModelUnavailableError(
                f"{profile.name} needs a Voyage API key: set VOYAGE_API_KEY in the environment"
            )
        base = os.environ.get("VOYAGE_BASE_URL") or profile.base_url or VOYAGE_DEFAULT_URL
        super().__init__(
            profile,
            base.rstrip("/") + "/embeddings",
            dim,
            precision,
            key,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
        )
        self.max_items = VOYAGE_MAX_ITEMS
        # 10% headroom: our token count is only an estimate of Voyage's tokenizer.
        limit = profile.api_token_limit or 120_000
        self.max_tokens_per_request = max_tokens_per_request or int(limit * 0.9)

    def _prompt(self, kind: str) -> str:
        return ""  # Voyage prepends its own prompt from input_type

    def _payload(self, inputs: list[str], kind: str) -> dict[str, Any]:
        return {
            "model": self.profile.hub_id,
            "input": inputs,
            "input_type": kind,
            "output_dimension": self.dim,
            "output_dtype": "float",  # storage quantization is ours (calibrated ranges)
            "truncation": True,
        }


def load_remote_embedder(
    profile: ModelProfile, dim: int | None = None, precision: str = "float32"
) -> Embedder:
    embedder = REMOTE_EMBEDDERS.get(profile.backend)
    if embedder is None:
        raise ValueError(f"{profile.name} is not a remote model (backend {profile.backend})")
    return embedder(profile, dim, precision)


# A remote profile's backend -> the client that speaks its API.
REMOTE_EMBEDDERS: dict[str, type[OpenAIEmbedder] | type[VoyageEmbedder]] = {
    "openai": OpenAIEmbedder,
    "voyage": VoyageEmbedder,
}
