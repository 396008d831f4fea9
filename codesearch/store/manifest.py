"""The manifest: what an index holds and how it was built, in one small JSON file.

`status`, the hooks and the warm-query client read it without LanceDB or numpy;
`load_index_embedder` turns it back into the model that embedded the index.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codesearch.core.errors import IndexError_
from codesearch.embed.registry import ModelProfile

SCHEMA_VERSION = 1


@dataclass
class Manifest:
    schema_version: int = SCHEMA_VERSION
    codesearch_version: str = ""
    model: str = ""
    fingerprint: str = ""
    dim: int = 0
    precision: str = "float32"
    created_at: float = 0.0
    indexed_at: float = 0.0
    files: int = 0
    chunks: int = 0
    vectors_pending: int = 0
    complete: bool = False
    # ModelProfile.to_manifest(): hub id, revision, prompts, pooling... (the one copy)
    profile: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None  # int8 ranges, computed once, reused forever
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def manifest_path(index_dir: Path) -> Path:
    return index_dir / "manifest.json"


def read_manifest(index_dir: Path) -> Manifest | None:
    path = manifest_path(index_dir)
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise IndexError_(f"cannot read {path}: {err}") from None


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    """Atomic: a reader sees the old or the new manifest, never half of one."""
    path = manifest_path(index_dir)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True))
    os.replace(tmp, path)


def index_profile(manifest: Manifest) -> ModelProfile:
    """The profile an index was built with, prompts and all (registry or not)."""
    from codesearch.embed.registry import get_profile

    if manifest.profile:
        return ModelProfile.from_manifest(manifest.profile)
    return get_profile(manifest.model)


def index_backend(manifest: Manifest) -> str:
    """The runtime that embedded this index; queries use the same one."""
    return str(manifest.extra.get("backend", "auto"))


def load_index_embedder(profile: ModelProfile, dim: int | None, backend: str = "auto") -> object:
    from codesearch.embed.local import load_embedder

    return load_embedder(profile, dim, backend=backend)
