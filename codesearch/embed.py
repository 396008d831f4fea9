"""Turn text into vectors through a model profile.

Owned by the model work (issue 4). The indexer and searcher only use
`load_embedder` and the `Embedder` protocol.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from codesearch.models import ModelProfile


class Embedder(Protocol):
    profile: ModelProfile
    dim: int
    precision: str

    @property
    def fingerprint(self) -> str: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


class ModelUnavailableError(RuntimeError):
    pass


def _local_weights(profile: ModelProfile) -> str:
    if profile.local_package:
        import importlib

        module = importlib.import_module(profile.local_package)
        return str(module.get_model_path())
    return profile.hub_id


class SentenceTransformerEmbedder:
    """Local model through sentence-transformers (imports torch: about 7 s)."""

    def __init__(self, profile: ModelProfile, dim: int | None = None, batch_size: int = 16):
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        self.profile = profile
        self.dim = dim or profile.dims
        self.precision = "float32"
        self.batch_size = batch_size
        self.model = SentenceTransformer(_local_weights(profile), device="cpu")
        self.model.max_seq_length = profile.max_tokens_cpu

    @property
    def fingerprint(self) -> str:
        return self.profile.fingerprint(self.dim, self.precision)

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            prompt=prompt or None,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        ).astype(np.float32)
        vectors = vectors[:, : self.dim]
        if self.profile.normalize or self.dim != self.profile.dims:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return vectors

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.profile.document_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.profile.query_prompt)


def load_embedder(profile: ModelProfile, dim: int | None = None) -> Embedder:
    return SentenceTransformerEmbedder(profile, dim)
