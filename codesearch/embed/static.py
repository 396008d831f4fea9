"""Static (token-level) embeddings with model2vec: a vector is the mean of its tokens' vectors.

No transformer runs: embedding is a table lookup, about a thousand times cheaper than
MiniLM on a CPU (docs/speed.md), so every chunk of a repository has a vector seconds
after `codesearch index` starts. The weights (`minilm-static` in the registry) were
distilled from the bundled all-MiniLM-L6-v2 with model2vec and ship inside codesearch
(`codesearch/embed/weights/minilm_static`, 15 MB): distilling on a user's machine would
cost 17-100 s and 1 GB of memory on first use, needs the `[distill]` extra, and could
give another machine (another scikit-learn or BLAS) slightly different vectors for the
same fingerprint. `distill_weights` is the recipe that made them.

Imports model2vec (and so numpy) only when a model loads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesearch.core.errors import ModelUnavailableError, one_line
from codesearch.embed.base import ProfileMismatchError, finalize_vectors
from codesearch.embed.registry import ModelProfile, local_weights, validate_dim

if TYPE_CHECKING:
    import numpy as np

# Tokens read per text. A chunk holds at most about 1.25x the transformer's 256-token
# input (index.build.CHUNK_TOKENS_PER_MODEL_TOKEN) plus its header, so nothing real is
# cut: unlike MiniLM, the static model reads the whole chunk (it costs nothing).
MAX_TOKENS = 512
WEIGHT_FILES = ("config.json", "model.safetensors", "tokenizer.json")
PCA_DIMS = 256
BASE_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


class StaticEmbedder:
    """The Embedder protocol over a model2vec StaticModel (float32, unit rows)."""

    def __init__(
        self,
        profile: ModelProfile,
        dim: int | None = None,
        *,
        precision: str = "float32",
        model_path: str | Path | None = None,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        self.profile = profile
        self.dim = validate_dim(profile, dim)
        self.precision = precision
        self.max_tokens = max_tokens
        self.source = _weights_folder(profile, model_path)
        try:
            from model2vec import StaticModel

            self.model = StaticModel.from_pretrained(str(self.source))
        except ImportError:
            raise ModelUnavailableError(
                f"model {profile.name} needs the package model2vec: pip install model2vec"
            ) from None
        except Exception as err:  # corrupt or partial files: one line, not a traceback
            raise ModelUnavailableError(
                f"cannot load model {profile.name} from {self.source}: {one_line(err)}"
            ) from None
        # A tokenizer.json copied from a transformer may pad or cut every text to 128
        # tokens: the pads would join the mean and long chunks would lose their tails.
        self.model.tokenizer.no_padding()
        self.model.tokenizer.no_truncation()
        if int(self.model.dim) != profile.dims:
            raise ProfileMismatchError(
                f"{profile.name} produces {self.model.dim}-d vectors but its profile says "
                f"{profile.dims}"
            )

    @property
    def fingerprint(self) -> str:
        return self.profile.fingerprint(self.dim, self.precision)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.profile.document_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.profile.query_prompt)

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer.encode(text, add_special_tokens=False).ids)

    def _embed(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed_documents/embed_queries take a list of strings, not one string")
        if not texts:
            import numpy as np

            return np.zeros((0, self.dim), dtype=np.float32)
        # No multiprocessing: model2vec would fork a joblib pool past 10k texts, which
        # costs more than it saves on a few cores and doubles the memory.
        with _tokenizer_threads(len(texts)):
            vectors = self.model.encode([prompt + t for t in texts], max_length=self.max_tokens,
                                        batch_size=1024, use_multiprocessing=False)
        return finalize_vectors(vectors, self.dim)


# Tokenizing is most of a static model's work (5.4 s of 17,700 chunks on one thread,
# 4.0 s on two): a large batch (a first index's interim tier, run once the chunking
# workers are done) tokenizes on every core. The CLI turns the tokenizers' threads off
# otherwise; subprocesses start with vfork, so no fork follows their use.
PARALLEL_TEXTS = 2048
TOKENIZERS_PARALLELISM = "TOKENIZERS_PARALLELISM"


@contextlib.contextmanager
def _tokenizer_threads(count: int) -> Iterator[None]:
    if count < PARALLEL_TEXTS or os.environ.get(TOKENIZERS_PARALLELISM) == "true":
        yield
        return
    before = os.environ.get(TOKENIZERS_PARALLELISM)
    os.environ[TOKENIZERS_PARALLELISM] = "true"  # read by tokenizers at each batch
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TOKENIZERS_PARALLELISM, None)
        else:
            os.environ[TOKENIZERS_PARALLELISM] = before


def _weights_folder(profile: ModelProfile, model_path: str | Path | None) -> Path:
    if model_path is not None:
        folder = Path(model_path).expanduser()
    else:
        found, _ = local_weights(profile)
        if found is None:
            raise ModelUnavailableError(
                f"the weights of {profile.name} are missing from this installation of "
                "codesearch (reinstall it)"
            )
        folder = found
    missing = [name for name in WEIGHT_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelUnavailableError(
            f"model folder {folder} of {profile.name} lacks {', '.join(missing)}"
        )
    return folder


def weights_digest(folder: Path) -> str:
    """Short sha256 of the weight files: the registry pins it as the profile's revision,
    so changed weights change every fingerprint (and no index mixes the two)."""
    digest = hashlib.sha256()
    for name in WEIGHT_FILES:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return digest.hexdigest()[:16]


# --- the recipe of the shipped weights (needs `pip install 'model2vec[distill]'`) ---------


def distill_weights(out_dir: Path, base_dir: Path, pca_dims: int = PCA_DIMS) -> str:
    """Distil `base_dir` (the bundled MiniLM) into `out_dir`; returns `weights_digest`.

    Runs offline: model2vec embeds each vocabulary token with the transformer (about
    100 s on two busy cores, 1 GB of memory), reduces them to `pca_dims` with PCA and
    weights them by token frequency (SIF).
    """
    from model2vec.distill import distill

    model = distill(model_name=str(base_dir), pca_dims=pca_dims)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    finish_weights(tmp)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in WEIGHT_FILES:
        shutil.copyfile(tmp / name, out_dir / name)
    shutil.rmtree(tmp, ignore_errors=True)
    return weights_digest(out_dir)


def finish_weights(folder: Path) -> None:
    """Make a distilled folder fit to ship: no machine paths, no fixed 128-token padding
    and truncation (inherited from the base model's tokenizer.json)."""
    config = json.loads((folder / "config.json").read_text())
    config["tokenizer_name"] = BASE_HUB_ID
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tokenizer: dict[str, Any] = json.loads((folder / "tokenizer.json").read_text())
    tokenizer["padding"] = None
    tokenizer["truncation"] = None
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))
    for extra in ("README.md", "modules.json"):
        (folder / extra).unlink(missing_ok=True)
