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

from codesearch.core.errors import IndexError_, damaged
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
        """Raises ValueError when a field has the wrong type (a garbled file that still parses)."""
        if not isinstance(data, dict):
            raise ValueError(f"a JSON object was expected, not {type(data).__name__}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name, value in known.items():
            wanted = _FIELD_TYPES.get(name)
            if wanted is not None and not _has_type(value, wanted):
                raise ValueError(f"field {name!r} holds {value!r}")
        return cls(**known)


# What each field must hold (None allowed only where the default is None).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "schema_version": (int,), "codesearch_version": (str,), "model": (str,),
    "fingerprint": (str,), "dim": (int,), "precision": (str,), "created_at": (int, float),
    "indexed_at": (int, float), "files": (int,), "chunks": (int,), "vectors_pending": (int,),
    "complete": (bool,), "profile": (dict,), "calibration": (dict, type(None)), "extra": (dict,),
}


def _has_type(value: Any, wanted: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in wanted:
        return False  # JSON true is not a count
    return isinstance(value, wanted)


def manifest_path(index_dir: Path) -> Path:
    return index_dir / "manifest.json"


def read_manifest(index_dir: Path) -> Manifest | None:
    """The manifest, or None when there is none. A file that does not parse is a
    DamagedIndexError (only a rebuild helps); one we may not read, an IndexError_."""
    path = manifest_path(index_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise damaged(index_dir, f"{path.name} is a folder") from None
    except OSError as err:
        raise IndexError_(f"cannot read {path}: {err.strerror or err}") from None
    try:
        return Manifest.from_dict(json.loads(raw.decode("utf-8")))
    except (ValueError, TypeError) as err:  # JSON, UTF-8 and field errors are ValueErrors
        what = "empty" if not raw.strip() else str(err).splitlines()[0][:120]
        raise damaged(index_dir, f"{path.name}: {what}") from None


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
